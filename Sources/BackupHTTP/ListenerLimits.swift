import BackupCore
import BackupProtocol
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// What a listener allows a connection before it proves anything, so that no one without a
/// certificate can lock others out: a TLS handshake within `handshakeSeconds`, the first
/// request's head within `headSeconds` after it, at most
/// `maxConnections` in all, at most `maxUnauthenticatedPerAddress` from one address that have
/// not finished their handshake (more than one for NAT), and no connection idle for longer
/// than `idleSeconds`.
public struct ListenerLimits: Sendable, Equatable {
    /// How long a TLS handshake may take. The default is 10 seconds.
    public var handshakeSeconds: Double = 10
    /// How long after the handshake the first request's head may take. The default is 10 s.
    public var headSeconds: Double = 10
    /// How long a connection may carry nothing. The default is 60 seconds (twice the longest
    /// long-poll).
    public var idleSeconds: Double = 60
    /// Connections open at once. The default is 4096.
    public var maxConnections = 4096
    /// Connections from one address still in their handshake. The default is 64.
    public var maxUnauthenticatedPerAddress = 64

    public init() {}
}

/// Counts a listener's connections, in all and per address before their handshake.
public final class ConnectionCounter: Sendable {
    struct Counts {
        var total = 0
        var pending: [String: Int] = [:]
    }
    private let counts = LockedBox(Counts())

    public init() {}

    /// Admits a connection from `address`, or says why not.
    func admit(_ address: String, _ limits: ListenerLimits) -> String? {
        counts.withLock { c in
            if c.total >= limits.maxConnections { return "the listener holds \(limits.maxConnections) connections" }
            if c.pending[address, default: 0] >= limits.maxUnauthenticatedPerAddress {
                return "\(limits.maxUnauthenticatedPerAddress) connections from \(address) are still in their handshake"
            }
            c.total += 1
            c.pending[address, default: 0] += 1
            return nil
        }
    }

    func authenticated(_ address: String) {
        counts.withLock { c in
            c.pending[address, default: 1] -= 1
            if c.pending[address] ?? 0 <= 0 { c.pending[address] = nil }
        }
    }

    func closed(_ address: String, stillPending: Bool) {
        counts.withLock { c in
            c.total -= 1
            if stillPending {
                c.pending[address, default: 1] -= 1
                if c.pending[address] ?? 0 <= 0 { c.pending[address] = nil }
            }
        }
    }

    /// Connections open now (for tests and metrics).
    public var open: Int { counts.withLock { $0.total } }
}

/// A child channel that applies ``ListenerLimits`` around another (TLS and HTTP): it counts
/// the connection in before anything else, closes it when its handshake is late, and lets the
/// per-address count go once the handshake is done.
public struct LimitedChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value
    let base: Base
    let limits: ListenerLimits
    let counter: ConnectionCounter
    let refusals: RefusalLog

    public init(_ base: Base, limits: ListenerLimits, counter: ConnectionCounter, refusals: RefusalLog) {
        self.base = base
        self.limits = limits
        self.counter = counter
        self.refusals = refusals
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        if let why = counter.admit(address, limits) {
            refusals.refused(peer: address, code: .tooManyConnections, logger: logger, detail: why)
            return channel.close().flatMap { channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        }
        let watch = HandshakeWatch(
            address: address, counter: counter, limits: limits, refusals: refusals, logger: logger)
        let done = watch.done
        do {
            try channel.pipeline.syncOperations.addHandler(watch.closer, position: .first)
        } catch {
            counter.closed(address, stillPending: true)
            return channel.eventLoop.makeFailedFuture(error)
        }
        let deadline = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(limits.handshakeSeconds * 1000))) {
            if !done.withLock({ $0 }) {
                refusals.refused(
                    peer: address, code: .handshakeTimeout, logger: logger,
                    detail: "no TLS handshake within \(limits.handshakeSeconds) s")
                channel.close(promise: nil)
            }
        }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        let setup = base.setup(channel: channel, logger: logger)
        // The base added its TLS handler synchronously; the handshake cannot complete before
        // this event-loop tick ends, so the watcher right after TLS sees its completion. A plain
        // listener (the dashboard on loopback) has no handshake: its head is timed at once.
        do {
            let sync = channel.pipeline.syncOperations
            if let tls = try? sync.handler(type: NIOSSLServerHandler.self) {  // Absent: plain HTTP.
                try sync.addHandler(watch.watcher, position: .after(tls))
            } else {
                watch.watcher.plain = true
                try sync.addHandler(watch.watcher, position: .after(watch.closer))
            }
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return setup
    }

    public func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// The two handlers of one connection's watch and what they share.
final class HandshakeWatch {
    let done = LockedBox(false)
    let closer: Closer
    let watcher: Watcher

    init(address: String, counter: ConnectionCounter, limits: ListenerLimits, refusals: RefusalLog, logger: Logger) {
        closer = Closer(address: address, counter: counter, done: done)
        watcher = Watcher(
            address: address, counter: counter, done: done, headSeconds: limits.headSeconds, refusals: refusals,
            logger: logger)
    }

    /// First in the pipeline: counts the connection out when it closes.
    final class Closer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let address: String
        let counter: ConnectionCounter
        let done: LockedBox<Bool>
        init(address: String, counter: ConnectionCounter, done: LockedBox<Bool>) {
            self.address = address
            self.counter = counter
            self.done = done
        }
        func channelInactive(context: ChannelHandlerContext) {
            counter.closed(address, stillPending: !done.withLock { $0 })
            context.fireChannelInactive()
        }
    }

    /// Right after TLS: marks the handshake done, then wants the first request's head (up to
    /// its blank line; an HTTP/2 client's preface ends with one too) within `headSeconds`.
    final class Watcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let address: String
        let counter: ConnectionCounter
        let done: LockedBox<Bool>
        let headSeconds: Double
        let refusals: RefusalLog
        let logger: Logger
        /// The end of what was read so far (to find a blank line across reads), nil once the
        /// head was seen.
        private var tail: [UInt8]? = []
        private var scanned = 0
        private var headDeadline: Scheduled<Void>?
        /// A listener without TLS: the connection counts as past its handshake when it is added.
        var plain = false

        init(
            address: String, counter: ConnectionCounter, done: LockedBox<Bool>, headSeconds: Double,
            refusals: RefusalLog, logger: Logger
        ) {
            self.address = address
            self.counter = counter
            self.done = done
            self.headSeconds = headSeconds
            self.refusals = refusals
            self.logger = logger
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if plain { handshakeDone(context: context) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls { handshakeDone(context: context) }
            context.fireUserInboundEventTriggered(event)
        }

        private func handshakeDone(context: ChannelHandlerContext) {
            markDone()
            if tail != nil {
                let channel = context.channel
                let (address, refusals, logger, seconds) = (address, refusals, logger, headSeconds)
                headDeadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
                    refusals.refused(
                        peer: address, code: .headTimeout, logger: logger,
                        detail: "no complete request head within \(seconds) s of the handshake")
                    channel.close(promise: nil)
                }
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if var seen = tail {
                let buffer = unwrapInboundIn(data)
                seen += buffer.readableBytesView
                scanned += buffer.readableBytes
                // A blank line ends the head; past 1 MiB the HTTP decoder's own limits decide.
                let blankLine =
                    seen.count >= 4
                    && (0...(seen.count - 4)).contains {
                        seen[$0] == 13 && seen[$0 + 1] == 10 && seen[$0 + 2] == 13 && seen[$0 + 3] == 10
                    }
                if scanned > 1 << 20 || blankLine {
                    tail = nil
                    headDeadline?.cancel()
                    headDeadline = nil
                } else {
                    tail = Array(seen.suffix(3))
                }
            }
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            headDeadline?.cancel()
            context.fireChannelInactive()
        }

        private func markDone() {
            let first = done.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { counter.authenticated(address) }
        }
    }
}

extension ListenerLimits {
    /// Reads `handshake_timeout`, `head_timeout`, `idle_timeout`, `max_connections` and
    /// `max_connections_per_address` (seconds and counts) of a listener's table.
    public static func read(_ t: ConfigTable, idleDefault: Double = 60) throws -> ListenerLimits {
        var limits = ListenerLimits()
        limits.idleSeconds = idleDefault
        if let v = try t.double("handshake_timeout") {
            guard (1...300).contains(v) else { throw t.error("handshake_timeout", "\(v) is outside 1...300") }
            limits.handshakeSeconds = v
        }
        if let v = try t.double("head_timeout") {
            guard (1...300).contains(v) else { throw t.error("head_timeout", "\(v) is outside 1...300") }
            limits.headSeconds = v
        }
        if let v = try t.double("idle_timeout") {
            guard (1...3600).contains(v) else { throw t.error("idle_timeout", "\(v) is outside 1...3600") }
            limits.idleSeconds = v
        }
        if let v = try t.int("max_connections") {
            guard (1...1_000_000).contains(v) else { throw t.error("max_connections", "\(v) is outside 1...1000000") }
            limits.maxConnections = v
        }
        if let v = try t.int("max_connections_per_address") {
            guard (1...100_000).contains(v) else {
                throw t.error("max_connections_per_address", "\(v) is outside 1...100000")
            }
            limits.maxUnauthenticatedPerAddress = v
        }
        return limits
    }
}
