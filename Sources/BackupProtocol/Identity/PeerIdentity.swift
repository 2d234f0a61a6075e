import BackupCore
import Foundation
import X509

/// Who is at the other end of a TLS connection, read from its verified certificate.
public struct PeerIdentity: Sendable, Equatable {
    public var name: String
    public var role: NodeRole
    /// The certificate's serial number, lower-case hex.
    public var serial: String

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
