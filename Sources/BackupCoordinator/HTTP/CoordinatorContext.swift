import BackupHTTP
import BackupProtocol
import Hummingbird
import NIOCore

/// The request context of the coordinator: keeps the connection, so that handlers can read the
/// peer's certificate, and the identity the identity middleware found there.
public struct CoordinatorContext: PeerContext {
    public var coreContext: CoreRequestContextStorage
    /// The TLS connection the request came on.
    public let channel: any Channel
    /// Who sent the request, from its verified certificate (set by `IdentityMiddleware`).
    public var peer: PeerIdentity?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies are decoded by the handlers with their own limit.
    public var maxUploadSize: Int { CoordinatorServer.maxResultBytes }
}
