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

/// Ed25519 keys in the PKCS#8 / SubjectPublicKeyInfo PEM forms that openssl writes and reads.
public enum Ed25519PEM {
    private static let privatePrefix: [UInt8] = [
        0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]
    private static let publicPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    public static func privateKey(_ key: Curve25519.Signing.PrivateKey) -> String {
        pem("PRIVATE KEY", privatePrefix + Array(key.rawRepresentation))
    }

    public static func publicKey(_ key: Curve25519.Signing.PublicKey) -> String {
        pem("PUBLIC KEY", publicPrefix + Array(key.rawRepresentation))
    }

    /// Reads an Ed25519 private key from a PEM file.
    public static func readPrivateKey(_ path: String) throws -> Curve25519.Signing.PrivateKey {
        let der = try derBytes(path, label: "PRIVATE KEY")
        guard der.count == privatePrefix.count + 32, Array(der.prefix(privatePrefix.count)) == privatePrefix else {
            throw BackupError(.invalidArgument, "'\(path)' is not an Ed25519 private key.")
        }
        return try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
    }

    /// Reads an Ed25519 public key from a PEM file.
    public static func readPublicKey(_ path: String) throws -> Curve25519.Signing.PublicKey {
        let der = try derBytes(path, label: "PUBLIC KEY")
        guard der.count == publicPrefix.count + 32, Array(der.prefix(publicPrefix.count)) == publicPrefix else {
            throw BackupError(.invalidArgument, "'\(path)' is not an Ed25519 public key.")
        }
        return try Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
    }

    private static func pem(_ label: String, _ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    static func derBytes(_ path: String, label: String) throws -> [UInt8] {
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

/// X25519 keys (an operator's key for the hub's key export) in the PEM forms of
/// `openssl genpkey -algorithm X25519` and `openssl pkey -pubout`.
public enum X25519PEM {
    private static let privatePrefix: [UInt8] = [
        0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E, 0x04, 0x22, 0x04, 0x20,
    ]
    private static let publicPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x6E, 0x03, 0x21, 0x00]

    public static func privateKey(_ key: Curve25519.KeyAgreement.PrivateKey) -> String {
        pem("PRIVATE KEY", privatePrefix + Array(key.rawRepresentation))
    }

    public static func publicKey(_ key: Curve25519.KeyAgreement.PublicKey) -> String {
        pem("PUBLIC KEY", publicPrefix + Array(key.rawRepresentation))
    }

    public static func readPrivateKey(_ path: String) throws -> Curve25519.KeyAgreement.PrivateKey {
        let der = try Ed25519PEM.derBytes(path, label: "PRIVATE KEY")
        guard der.count == privatePrefix.count + 32, Array(der.prefix(privatePrefix.count)) == privatePrefix else {
            throw BackupError(
                .invalidArgument,
                "'\(path)' is not an X25519 private key (make one with 'openssl genpkey -algorithm X25519').")
        }
        return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: der.suffix(32))
    }

    public static func readPublicKey(_ path: String) throws -> Curve25519.KeyAgreement.PublicKey {
        let der = try Ed25519PEM.derBytes(path, label: "PUBLIC KEY")
        guard der.count == publicPrefix.count + 32, Array(der.prefix(publicPrefix.count)) == publicPrefix else {
            throw BackupError(
                .invalidArgument,
                "'\(path)' is not an X25519 public key (make one with 'openssl pkey -in KEY -pubout' of an X25519 key)."
            )
        }
        return try Curve25519.KeyAgreement.PublicKey(rawRepresentation: der.suffix(32))
    }

    private static func pem(_ label: String, _ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
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
