import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// Builds every listener of ours the same way: mutual TLS, the ``ListenerLimits`` around the
/// connection, the idle timeout, and refusals logged through one ``RefusalLog``.
public enum Listener {
    /// HTTP/2 where the client offers it (ALPN `h2`), HTTP/1.1 otherwise (the coordinator).
    public static func http2(
        tls: TLSConfiguration, limits: ListenerLimits, counter: ConnectionCounter, refusals: RefusalLog
    ) -> HTTPServerBuilder {
        let idle = Duration.milliseconds(Int64(limits.idleSeconds * 1000))
        return HTTPServerBuilder { responder in
            LimitedChannel(
                try HTTP2UpgradeChannel(
                    tlsConfiguration: tls,
                    configuration: .init(
                        idleTimeout: idle,
                        streamConfiguration: .init(idleTimeout: .milliseconds(Int64(limits.idleSeconds * 1000)))),
                    responder: responder),
                limits: limits, counter: counter, refusals: refusals)
        }
    }

    /// Plain HTTP/1.1 with the same limits (the dashboard on a loopback address only).
    public static func plainHTTP1(limits: ListenerLimits, counter: ConnectionCounter, refusals: RefusalLog)
        -> HTTPServerBuilder
    {
        HTTPServerBuilder { responder in
            LimitedChannel(
                HTTP1Channel(
                    responder: responder,
                    configuration: .init(idleTimeout: .milliseconds(Int64(limits.idleSeconds * 1000)))),
                limits: limits, counter: counter, refusals: refusals)
        }
    }

    /// HTTP/1.1 over TLS (the agents' data ports, the dashboard off loopback).
    public static func http1(
        tls: TLSConfiguration, limits: ListenerLimits, counter: ConnectionCounter, refusals: RefusalLog
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            LimitedChannel(
                try TLSChannel(
                    HTTP1Channel(
                        responder: responder,
                        configuration: .init(idleTimeout: .milliseconds(Int64(limits.idleSeconds * 1000)))),
                    tlsConfiguration: tls),
                limits: limits, counter: counter, refusals: refusals)
        }
    }
}
