import BackupCore
import Crypto
import Foundation
import X509

/// Reads PEM certificates and keys, with errors that name the file.
public enum PEMFiles {
    /// The first certificate in a PEM file.
    public static func certificate(_ path: String) throws -> Certificate {
        try certificates(path)[0]
    }

    /// Every certificate in a PEM file, in order.
    public static func certificates(_ path: String) throws -> [Certificate] {
        let text = try string(path)
        let blocks = text.components(separatedBy: "-----END CERTIFICATE-----").dropLast().map {
            $0 + "-----END CERTIFICATE-----"
        }
        guard !blocks.isEmpty else { throw BackupError(.invalidArgument, "'\(path)' holds no PEM certificate.") }
        return try blocks.map { block in
            do {
                return try Certificate(
                    pemEncoded: String(block[block.range(of: "-----BEGIN CERTIFICATE-----")!.lowerBound...]))
            } catch {
                throw BackupError(.invalidArgument, "'\(path)' holds a certificate that cannot be read: \(error).")
            }
        }
    }

    /// A P-256 private key in PKCS#8 or SEC1 PEM.
    public static func p256PrivateKey(_ path: String) throws -> P256.Signing.PrivateKey {
        do { return try P256.Signing.PrivateKey(pemRepresentation: try string(path)) } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.invalidArgument, "'\(path)' is not a P-256 private key in PEM: \(error).")
        }
    }

    static func string(_ path: String) throws -> String {
        guard try FileSystem.linkStatus(path) != nil else { throw BackupError(.notFound, "'\(path)' does not exist.") }
        return String(decoding: try FileSystem.readSmallFile(path), as: UTF8.self)
    }
}

/// A 32-byte key of an RFC 8410 algorithm (Ed25519, X25519) in the PKCS#8 and
/// SubjectPublicKeyInfo PEM forms that openssl writes and reads: a fixed DER prefix naming the
/// algorithm's OID, then the raw bytes.
struct RawKeyPEM {
    /// The OID's last byte: 0x70 for Ed25519, 0x6E for X25519.
    let algorithm: UInt8
    /// How a refusal names the kind ("Ed25519"), and what to add to it.
    let name: String
    var privatePrefix: [UInt8] {
        [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, algorithm, 0x04, 0x22, 0x04, 0x20]
    }
    var publicPrefix: [UInt8] { [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, algorithm, 0x03, 0x21, 0x00] }

    func pem(private raw: Data) -> String { Self.pem("PRIVATE KEY", privatePrefix + Array(raw)) }
    func pem(public raw: Data) -> String { Self.pem("PUBLIC KEY", publicPrefix + Array(raw)) }

    /// The raw 32 bytes of the private (or public) key in the PEM file at `path`.
    func read(_ path: String, isPrivate: Bool, hint: String = "") throws -> Data {
        let label = isPrivate ? "PRIVATE KEY" : "PUBLIC KEY"
        let prefix = isPrivate ? privatePrefix : publicPrefix
        let der = try Self.derBytes(path, label: label)
        guard der.count == prefix.count + 32, Array(der.prefix(prefix.count)) == prefix else {
            throw BackupError(
                .invalidArgument, "'\(path)' is not an \(name) \(isPrivate ? "private" : "public") key\(hint).")
        }
        return Data(der.suffix(32))
    }

    private static func pem(_ label: String, _ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    private static func derBytes(_ path: String, label: String) throws -> [UInt8] {
        let text = try PEMFiles.string(path)
        guard let start = text.range(of: "-----BEGIN \(label)-----"), let end = text.range(of: "-----END \(label)-----")
        else {
            throw BackupError(.invalidArgument, "'\(path)' holds no PEM \(label.lowercased()).")
        }
        let body = text[start.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else {
            throw BackupError(.invalidArgument, "'\(path)' has a PEM body that is not base64.")
        }
        return Array(data)
    }
}

/// Ed25519 keys (the ticket and purge signing keys) in openssl's PEM forms.
public enum Ed25519PEM {
    static let form = RawKeyPEM(algorithm: 0x70, name: "Ed25519")

    public static func privateKey(_ key: Curve25519.Signing.PrivateKey) -> String {
        form.pem(private: key.rawRepresentation)
    }

    public static func publicKey(_ key: Curve25519.Signing.PublicKey) -> String {
        form.pem(public: key.rawRepresentation)
    }

    /// Reads an Ed25519 private key from a PEM file.
    public static func readPrivateKey(_ path: String) throws -> Curve25519.Signing.PrivateKey {
        try Curve25519.Signing.PrivateKey(rawRepresentation: try form.read(path, isPrivate: true))
    }

    /// Reads an Ed25519 public key from a PEM file.
    public static func readPublicKey(_ path: String) throws -> Curve25519.Signing.PublicKey {
        try Curve25519.Signing.PublicKey(rawRepresentation: try form.read(path, isPrivate: false))
    }
}

/// X25519 keys (an operator's key for the hub's key export) in the PEM forms of
/// `openssl genpkey -algorithm X25519` and `openssl pkey -pubout`.
public enum X25519PEM {
    static let form = RawKeyPEM(algorithm: 0x6E, name: "X25519")

    public static func privateKey(_ key: Curve25519.KeyAgreement.PrivateKey) -> String {
        form.pem(private: key.rawRepresentation)
    }

    public static func publicKey(_ key: Curve25519.KeyAgreement.PublicKey) -> String {
        form.pem(public: key.rawRepresentation)
    }

    public static func readPrivateKey(_ path: String) throws -> Curve25519.KeyAgreement.PrivateKey {
        try Curve25519.KeyAgreement.PrivateKey(
            rawRepresentation: try form.read(
                path, isPrivate: true, hint: " (make one with 'openssl genpkey -algorithm X25519')"))
    }

    public static func readPublicKey(_ path: String) throws -> Curve25519.KeyAgreement.PublicKey {
        try Curve25519.KeyAgreement.PublicKey(
            rawRepresentation: try form.read(
                path, isPrivate: false, hint: " (make one with 'openssl pkey -in KEY -pubout' of an X25519 key)"))
    }
}

/// Small JSON files with atomic writes and errors that name the file.
enum JSONFiles {
    static func read<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(T.self, from: Data(try PEMFiles.string(path).utf8)) } catch let error
            as BackupError
        {
            throw error
        } catch {
            throw BackupError(.invalidArgument, "'\(path)' cannot be read: \(error).")
        }
    }

    static func write<T: Encodable>(_ value: T, to path: String, mode: mode_t) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try FileSystem.writeAtomically(Array(try encoder.encode(value)) + [0x0A], to: path, mode: mode)
    }
}

/// IPv4 and IPv6 text addresses as bytes, for subject alternative names.
enum IPAddressBytes {
    static func parse(_ text: String) throws -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        throw BackupError(.invalidArgument, "'\(text)' is not an IPv4 or IPv6 address.")
    }
}
