import BackupCore
import Crypto
import Foundation

/// One signed, typed message from the coordinator: a transfer ticket, a purge order or an
/// artifact receipt.
///
/// On the wire it is `<key id>.<base64url(payload)>.<base64url(signature)>` (no padding), where
/// the key id names the signing key (``SigningKeyring/keyID(of:)``), the payload is the
/// message's JSON and the Ed25519 signature is over the bytes
/// `scm-backup-signed/2 LF <type> LF <key id> LF <payload>`. The type (the payload's `format`)
/// is signed too, so bytes signed as one kind of message are never accepted as another, even
/// when one key signs both. The key id only says which trusted key to try: the trust is the
/// signature verifying with a key this side holds. See `Protocol/transfer.md`.
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

    /// Signs `payload` (JSON) as a message of `type`, naming the key's id.
    public static func seal(_ payload: Data, type: String, with key: Curve25519.Signing.PrivateKey) throws -> String {
        let id = SigningKeyring.keyID(of: key.publicKey)
        let signature = try key.signature(for: signedBytes(payload, type: type, keyID: id))
        return id + "." + base64url(payload) + "." + base64url(signature)
    }

    /// The payload of `envelope` if its signature verifies, as a message of `type`, with the
    /// key of `keys` that its key id names; `what` names the message in refusals ("ticket",
    /// "purge order"), `codePrefix` their codes.
    public static func open(
        _ envelope: String, type: String, keys: SigningKeyring, what: String, codePrefix: String
    ) throws(Refusal) -> Data {
        let parts = envelope.split(separator: ".", omittingEmptySubsequences: false)
        guard envelope.utf8.count <= 64 << 10, parts.count == 3, SigningKeyring.isKeyID(parts[0]),
            let payload = unbase64url(parts[1]), let signature = unbase64url(parts[2])
        else {
            throw Refusal(
                code: BackupError.Code(rawValue: "\(codePrefix)-malformed"),
                message: "The \(what) is not <key id>.<payload>.<signature> (signed envelope version 2).")
        }
        let id = String(parts[0])
        guard let key = keys.key(id) else {
            throw Refusal(
                code: BackupError.Code(rawValue: "\(codePrefix)-forged"),
                message:
                    "The \(what) is signed with key \(id), which is not among the keys trusted here (\(keys.describe))."
            )
        }
        guard key.isValidSignature(signature, for: signedBytes(payload, type: type, keyID: id)) else {
            throw Refusal(
                code: BackupError.Code(rawValue: "\(codePrefix)-forged"),
                message:
                    "The \(what)'s signature does not verify with key \(id) (\(keys.file(id) ?? "?")) as a \(type) message."
            )
        }
        return payload
    }

    /// The payload of a well-formed envelope without checking its signature: only for keeping
    /// a message whose signature someone else checks later (a receipt on a node that trusts no
    /// key), never for a decision.
    static func unverifiedPayload(_ envelope: String) -> Data? {
        let parts = envelope.split(separator: ".", omittingEmptySubsequences: false)
        guard envelope.utf8.count <= 64 << 10, parts.count == 3, SigningKeyring.isKeyID(parts[0]) else { return nil }
        return unbase64url(parts[1])
    }

    static func signedBytes(_ payload: Data, type: String, keyID: String) -> Data {
        Data("scm-backup-signed/2\n\(type)\n\(keyID)\n".utf8) + payload
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
