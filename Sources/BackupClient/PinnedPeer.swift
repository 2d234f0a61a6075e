import BackupCore
import BackupProtocol
import Foundation

/// A peer to dial: the URL configured for it, and the identity its certificate must prove.
package struct PinnedPeer: Sendable {
    /// The URL as configured (used in messages).
    package var url: String
    /// The same URL with the host replaced by the peer's identity name.
    package var dialURL: String
    /// Identity name → the real host, for the HTTP client's `dnsOverride`.
    package var override: [String: String]

    /// Pins `url` to the certificate of `name` with `role` (see ``PeerIdentity/identityHost``).
    package init(url: String, name: String, role: NodeRole) throws {
        guard let parsed = URL(string: url), parsed.scheme == "https", var host = parsed.host, !host.isEmpty else {
            throw BackupError(.invalidArgument, "'\(url)' is not an https:// URL with a host.")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let identity = PeerIdentity.identityHost(name: name, role: role)
        self.url = url
        dialURL = "https://\(identity):\(parsed.port ?? 443)" + parsed.path
        override = [identity: host]
    }
}
