import BackupCore
import Crypto
import Foundation
import X509

/// Who is at the other end of a TLS connection, read from its verified certificate.
public struct PeerIdentity: Sendable, Equatable {
    public var name: String
    public var role: NodeRole
    /// The certificate's serial number, lower-case hex.
    public var serial: String
    /// When the certificate expires (for the `certificate-expiring` alert).
    public var notAfter: Date?

    /// Reads the name (common name) and role (organizational unit) of a certificate that the
    /// TLS layer has already verified against the site CA.
    public init(certificate: Certificate) throws {
        var name: String?
        var unit: String?
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { name = String(attribute.value) }
                if attribute.type == .RDNAttributeType.organizationalUnitName { unit = String(attribute.value) }
            }
        }
        let serial = SiteCA.hex(certificate.serialNumber)
        guard let name, !name.isEmpty else {
            throw BackupError(.refused, "Certificate \(serial) has no common name, so it names no node.")
        }
        guard let unit, let role = NodeRole(rawValue: unit) else {
            throw BackupError(.refused, "Certificate \(serial) of '\(name)' carries no scm-backup role.")
        }
        self.name = name
        self.role = role
        self.serial = serial
        notAfter = certificate.notValidAfter
    }
}

extension PeerIdentity {
    /// The domain of identity names: no real host has them, and the PKI puts one only into a
    /// certificate of the role and name it stands for.
    public static let identityDomain = "id.scm-backup.invalid"

    /// The DNS name that stands for `role` and `name` in a certificate's subject alternative
    /// names: `n<32 hex of SHA-256("scm-backup-identity/1", role, name)>.id.scm-backup.invalid`.
    ///
    /// A client that must reach a given peer (an agent its coordinator, an agent the data port
    /// of a ticket's other party) connects to this name, mapped to the peer's real address, so
    /// that TLS host name verification itself checks the peer's role and name: a certificate
    /// of another role or node, even from the site CA, fails the handshake.
    public static func identityHost(name: String, role: NodeRole) -> String {
        let digest = SHA256.hash(data: Data("scm-backup-identity/1\u{0}\(role.rawValue)\u{0}\(name)".utf8))
        return "n" + digest.prefix(16).map { String(format: "%02x", $0) }.joined() + "." + identityDomain
    }
}

/// The serials that no one may use any more (`revoked.json`, format `scm-backup-revoked/1`).
public struct RevocationList: Codable, Sendable, Equatable {
    public var format = "scm-backup-revoked/1"
    /// Revoked serials, lower-case hex.
    public var serials: [String]
    public var updated: Date

    public init(serials: [String], updated: Date) {
        self.serials = serials
        self.updated = updated
    }

    public func isRevoked(_ serial: String) -> Bool { serials.contains(serial.lowercased()) }

    /// Reads a list, refusing an unknown format.
    public static func read(_ path: String) throws -> RevocationList {
        let list = try JSONFiles.read(RevocationList.self, path)
        guard list.format == "scm-backup-revoked/1" else {
            throw BackupError(.invalidArgument, "'\(path)' has format '\(list.format)', not scm-backup-revoked/1.")
        }
        return list
    }
}
