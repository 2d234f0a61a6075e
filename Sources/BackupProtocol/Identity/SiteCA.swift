import BackupCore
import Crypto
import Foundation
import SwiftASN1
import X509

/// The site's certificate authority and signing keys, kept in one folder:
///
/// ```
/// ca.pem  ca.key                       the CA (P-256); the key is needed only to issue and revoke
/// ticket-signing.key/.pub              Ed25519, signs transfer tickets (coordinator only)
/// purge-signing.key/.pub               Ed25519, signs purge orders (coordinator only)
/// issued.json                          every certificate issued (format scm-backup-issued/1)
/// revoked.json                         revoked serials (format scm-backup-revoked/1), which the
///                                      coordinator and agents honour
/// ```
///
/// Keys are written 0600, certificates and lists 0644. Everything is standard PEM that
/// `openssl` reads. The running coordinator needs `ca.pem`, its own certificate and key, the
/// signing keys and `revoked.json`, never `ca.key`, which may be kept offline.
public struct SiteCA: Sendable {
    public let folder: String
    public let certificate: Certificate

    public static let caCertificateFile = "ca.pem"
    public static let caKeyFile = "ca.key"
    public static let issuedFile = "issued.json"
    public static let revokedFile = "revoked.json"
    /// One signing key per purpose.
    public enum SigningPurpose: String, CaseIterable, Sendable {
        case ticket = "ticket-signing"
        case purge = "purge-signing"
    }

    /// Makes a new CA and signing keys in `folder` (created 0700; must not hold a CA already).
    public static func initialise(at folder: String, site: String, now: Date = Date(), years: Int = 10) throws -> SiteCA
    {
        try FileSystem.makeDirectories(folder)
        guard try FileSystem.linkStatus(folder + "/" + caKeyFile) == nil,
            try FileSystem.linkStatus(folder + "/" + caCertificateFile) == nil
        else {
            throw BackupError(.refused, "'\(folder)' already holds a site CA; refusing to replace it.")
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("scm-backup site \(site)")
            CommonName("scm-backup CA \(site)")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Double(years) * 365.25 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        try FileSystem.writeAtomically(Array(key.pemRepresentation.utf8), to: folder + "/" + caKeyFile, mode: 0o600)
        try FileSystem.writeAtomically(
            Array(try certificate.serializeAsPEM().pemString.utf8) + [0x0A], to: folder + "/" + caCertificateFile,
            mode: 0o644)
        for purpose in SigningPurpose.allCases {
            let signing = Curve25519.Signing.PrivateKey()
            try FileSystem.writeAtomically(
                Array(Ed25519PEM.privateKey(signing).utf8), to: folder + "/\(purpose.rawValue).key", mode: 0o600)
            try FileSystem.writeAtomically(
                Array(Ed25519PEM.publicKey(signing.publicKey).utf8), to: folder + "/\(purpose.rawValue).pub",
                mode: 0o644)
        }
        let ca = SiteCA(folder: folder, certificate: certificate)
        try ca.writeIssued([])
        try ca.writeRevocations(RevocationList(serials: [], updated: now))
        return ca
    }

    /// Opens the CA in `folder` (its certificate; the key is read only when issuing).
    public static func open(_ folder: String) throws -> SiteCA {
        let path = folder + "/" + caCertificateFile
        guard try FileSystem.linkStatus(path) != nil else {
            throw BackupError(
                .notFound, "'\(folder)' holds no site CA (\(caCertificateFile)); make one with 'scm-backup pki init'.")
        }
        return SiteCA(folder: folder, certificate: try PEMFiles.certificate(path))
    }

    /// Issues a key and certificate for `name` with `role`, written to `<output>/<name>.key`
    /// (0600) and `<output>/<name>.pem` (the certificate followed by the CA's).
    ///
    /// Agents' and the coordinator's certificates serve both client and server TLS and carry a
    /// subject alternative name for each of `dnsNames` and `ipAddresses`, and their identity
    /// name (``PeerIdentity/identityHost(name:role:)``), which clients verify.
    public func issue(
        name: String, role: NodeRole, dnsNames: [String] = [], ipAddresses: [String] = [], days: Int = 397,
        output: String, now: Date = Date()
    ) throws -> IssuedCertificate {
        try StoreName.validate(name, what: "node name")
        guard days > 0, days <= 3650 else {
            throw BackupError(.invalidArgument, "A validity of \(days) days is not between 1 and 3650.")
        }
        for dns in dnsNames where dns.lowercased().hasSuffix(PeerIdentity.identityDomain) {
            throw BackupError(
                .invalidArgument,
                "'\(dns)' is in \(PeerIdentity.identityDomain), where the CA alone puts identity names; give real host names."
            )
        }
        if role.isServer, let ip = ipAddresses.first {
            throw BackupError(
                .invalidArgument,
                "An IP address (\(ip)) in a certificate of role \(role.rawValue) would let its holder pass for any peer at that address (TLS matches IP names against the connection). Agents and the coordinator are reached by their identity names, so give no --ip."
            )
        }
        var sans: [GeneralName] = dnsNames.map { .dnsName($0) }
        for ip in ipAddresses {
            sans.append(.ipAddress(ASN1OctetString(contentBytes: try IPAddressBytes.parse(ip)[...])))
        }
        if role.isServer && sans.isEmpty { sans.append(.dnsName(name)) }
        // The name clients dial to be sure of this certificate's role and name.
        if role.isServer { sans.append(.dnsName(PeerIdentity.identityHost(name: name, role: role))) }
        let caKey = try PEMFiles.p256PrivateKey(folder + "/" + SiteCA.caKeyFile)
        let key = P256.Signing.PrivateKey()
        let usages: [ExtendedKeyUsage.Usage] = role.isServer ? [.serverAuth, .clientAuth] : [.clientAuth]
        let subject = try DistinguishedName {
            OrganizationName(SiteCA.organization(of: certificate) ?? "scm-backup")
            OrganizationalUnitName(role.rawValue)
            CommonName(name)
        }
        let issued = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(days) * 86400),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage(usages)
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            },
            issuerPrivateKey: .init(caKey))
        try FileSystem.makeDirectories(output)
        try FileSystem.writeAtomically(Array(key.pemRepresentation.utf8), to: "\(output)/\(name).key", mode: 0o600)
        let chain = try issued.serializeAsPEM().pemString + "\n" + certificate.serializeAsPEM().pemString + "\n"
        try FileSystem.writeAtomically(Array(chain.utf8), to: "\(output)/\(name).pem", mode: 0o644)
        let record = IssuedCertificate(
            name: name, role: role, serial: SiteCA.hex(issued.serialNumber), notBefore: issued.notValidBefore,
            notAfter: issued.notValidAfter, dnsNames: dnsNames, ipAddresses: ipAddresses, revokedAt: nil)
        try writeIssued(try issuedCertificates() + [record])
        return record
    }

    /// Every certificate issued, in order, with revocations marked.
    public func issuedCertificates() throws -> [IssuedCertificate] {
        try JSONFiles.read(IssuedList.self, folder + "/" + SiteCA.issuedFile).certificates
    }

    /// The revocation list that the coordinator and agents honour.
    public func revocations() throws -> RevocationList {
        try RevocationList.read(folder + "/" + SiteCA.revokedFile)
    }

    /// Revokes the certificate with `serial` (hex, as `list` shows it).
    @discardableResult
    public func revoke(serial: String, now: Date = Date()) throws -> IssuedCertificate {
        let wanted = serial.lowercased()
        var issued = try issuedCertificates()
        guard let index = issued.firstIndex(where: { $0.serial == wanted }) else {
            throw BackupError(.notFound, "No certificate with serial \(serial) was issued by the CA in '\(folder)'.")
        }
        if issued[index].revokedAt == nil { issued[index].revokedAt = now }
        var list = try revocations()
        if !list.serials.contains(wanted) { list.serials.append(wanted) }
        list.updated = now
        try writeRevocations(list)
        try writeIssued(issued)
        return issued[index]
    }

    private func writeIssued(_ certificates: [IssuedCertificate]) throws {
        try JSONFiles.write(IssuedList(certificates: certificates), to: folder + "/" + SiteCA.issuedFile, mode: 0o644)
    }

    private func writeRevocations(_ list: RevocationList) throws {
        try JSONFiles.write(list, to: folder + "/" + SiteCA.revokedFile, mode: 0o644)
    }

    static func hex(_ serial: Certificate.SerialNumber) -> String {
        serial.bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func organization(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                return String(attribute.value)
            }
        }
        return nil
    }
}

/// One issued certificate as `issued.json` and `pki list` record it.
public struct IssuedCertificate: Codable, Sendable, Equatable {
    public var name: String
    public var role: NodeRole
    /// The serial number, lower-case hex.
    public var serial: String
    public var notBefore: Date
    public var notAfter: Date
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var revokedAt: Date?
}

struct IssuedList: Codable {
    var format = "scm-backup-issued/1"
    var certificates: [IssuedCertificate]
}
