import BackupCore
import Crypto
import Foundation

/// The hub's private keys for an offline safe (`scm-backup pki export-hub`): the coordinator's
/// certificate and key and its ticket and purge signing keys, encrypted to an operator's X25519
/// public key with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305;
/// base mode). The file is JSON; its format and recipient are bound to the ciphertext as
/// associated data, so neither can be changed without the opening failing. Only the holder of
/// the recipient's private key reads it (`scm-backup pki import-hub`). These keys never go
/// into a self-backup. See `Protocol/hub.md`.
public struct HubKeyExport: Codable, Sendable, Equatable {
    public static let format = "scm-backup-hub-keys/1"
    static let suiteName = SealedBox.suiteName

    /// One exported file: which `[coordinator]` key named it (`certificate`, `key`, `ca`,
    /// `ticket_key`, `purge_key`), its file name, and its PEM text.
    public struct Entry: Codable, Sendable, Equatable {
        public var key: String
        public var file: String
        public var pem: String
        public init(key: String, file: String, pem: String) {
            self.key = key
            self.file = file
            self.pem = pem
        }
    }

    public var format: String
    /// The recipient key's id: 16 hex digits of the SHA-256 of its raw 32 bytes.
    public var recipient: String
    public var suite: String
    public var coordinator: String
    public var exportedAt: Date
    public var encapsulatedKey: String
    public var ciphertext: String

    /// The id of an X25519 public key, as ``recipient`` names it.
    public static func keyID(of key: Curve25519.KeyAgreement.PublicKey) -> String { SealedBox.keyID(of: key) }

    /// Encrypts `entries` to `recipient`.
    public static func seal(
        _ entries: [Entry], coordinator: String, to recipient: Curve25519.KeyAgreement.PublicKey, now: Date = Date()
    ) throws -> HubKeyExport {
        var sealed = HubKeyExport(
            format: format, recipient: keyID(of: recipient), suite: suiteName, coordinator: coordinator,
            exportedAt: now, encapsulatedKey: "", ciphertext: "")
        let box = try SealedBox.seal(
            try WireJSON.encoder().encode(entries), to: recipient, info: format, associatedData: sealed.associatedData)
        sealed.encapsulatedKey = box.encapsulatedKey
        sealed.ciphertext = box.ciphertext
        return sealed
    }

    /// Decrypts with `identity`; refused, with the reason, for another recipient, another
    /// format, or a file changed since it was written.
    public func open(with identity: Curve25519.KeyAgreement.PrivateKey, file: String) throws -> [Entry] {
        guard format == Self.format, suite == Self.suiteName else {
            throw BackupError(
                .invalidArgument,
                "'\(file)' is of format '\(format)' (\(suite)), not \(Self.format) (\(Self.suiteName)).")
        }
        let mine = Self.keyID(of: identity.publicKey)
        guard recipient == mine else {
            throw BackupError(
                .refused, "'\(file)' is encrypted to key \(recipient), not to this identity (key \(mine)).")
        }
        let plaintext = try SealedBox.open(
            encapsulatedKey: encapsulatedKey, ciphertext: ciphertext, with: identity, info: Self.format,
            associatedData: associatedData, what: "'\(file)'")
        do { return try WireJSON.decoder().decode([Entry].self, from: plaintext) } catch {
            throw BackupError(.invalidArgument, "'\(file)' opened but holds no key list: \(WireJSON.describe(error)).")
        }
    }

    /// What the ciphertext is bound to besides the key: every field but the sealed bytes.
    var associatedData: Data {
        Data(
            "\(format)\n\(recipient)\n\(suite)\n\(coordinator)\n\(Int(exportedAt.timeIntervalSince1970))".utf8)
    }
}
