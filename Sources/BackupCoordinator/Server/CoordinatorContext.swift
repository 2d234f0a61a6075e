import BackupProtocol
import Hummingbird
import NIOCore

/// The request context of the coordinator: keeps the connection, so that handlers can read the
/// peer's certificate, and the identity the identity middleware found there.
public struct CoordinatorContext: RequestContext {
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

    /// The peer, if its role is one of `roles`; otherwise a 403 naming the role needed.
    func requirePeer(_ roles: Set<NodeRole>, for action: String) throws -> PeerIdentity {
        guard let peer else {
            throw WireError(.unauthorized, "no-certificate", "A client certificate from the site CA is required.")
        }
        guard roles.contains(peer.role) else {
            let needed = roles.map(\.rawValue).sorted().map { ("aeiou".contains($0.first!) ? "an " : "a ") + $0 }
                .joined(separator: " or ")
            throw WireError(
                .forbidden, "wrong-role",
                "\(peer.role.rawValue) certificate '\(peer.name)' may not \(action); that needs \(needed) certificate."
            )
        }
        return peer
    }
}
