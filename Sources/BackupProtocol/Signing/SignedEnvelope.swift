import BackupCore
import Crypto
import Foundation

/// One signed, typed message from the coordinator: a transfer ticket or a purge order.
///
/// On the wire it is `<base64url(payload)>.<base64url(signature)>` (no padding), where the
/// payload is the message's JSON and the Ed25519 signature is over the bytes
/// `scm-backup-signed/1 LF <type> LF <payload>`. The type (the payload's `format`) is signed
/// too, so bytes signed as one kind of message are never accepted as another, even when one
/// key signs both. See `Protocol/transfer.md` and `Protocol/purge.md`.
public enum SignedEnvelope {
    /// What a refusal is called on the wire, and why.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var code: BackupError.Code
        public var message: String
        public var description: String { message }
        public init(code: BackupError.Code, message: String) {
            self.code = code
            self.message = message
        }
    }

    /// Signs `payload` (JSON) as a message of `type`.
    public static func seal(_ payload: Data, type: String, with key: Curve25519.Signing.PrivateKey) throws -> String {
        let signature = try key.signature(for: signedBytes(payload, type: type))
        return base64url(payload) + "." + base64url(signature)
    }

    /// The payload of `envelope` if its signature verifies with `key` as a message of `type`;
    /// `what` names the message in refusals ("ticket", "purge order"), `codePrefix` their codes.
    public static func open(
        _ envelope: String, type: String, key: Curve25519.Signing.PublicKey, what: String, codePrefix: String
    ) throws(Refusal) -> Data {
        let parts = envelope.split(separator: ".", omittingEmptySubsequences: false)
        guard envelope.utf8.count <= 64 << 10, parts.count == 2, let payload = unbase64url(parts[0]),
            let signature = unbase64url(parts[1])
        else {
            throw Refusal(
                code: BackupError.Code(rawValue: "\(codePrefix)-malformed"),
                message: "The \(what) is not <payload>.<signature>.")
        }
        guard key.isValidSignature(signature, for: signedBytes(payload, type: type)) else {
            throw Refusal(
                code: BackupError.Code(rawValue: "\(codePrefix)-forged"),
                message: "The \(what)'s signature does not verify with the coordinator's key as a \(type) message.")
        }
        return payload
    }

    static func signedBytes(_ payload: Data, type: String) -> Data {
        Data("scm-backup-signed/1\n\(type)\n".utf8) + payload
    }

    static func base64url(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }

    /// A random 128-bit id, lower-case hex.
    public static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
