import BackupCore
import Crypto
import Foundation

/// Encryption to one X25519 public key with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, ChaCha20-Poly1305; base mode), the `info` naming the format and the associated
/// data binding what travels beside the ciphertext. Used by the hub's key export for an offline
/// safe (``HubKeyExport``) and by a recovery's preview sealed to the admin's one-time key
/// (``SealedPreview``).
public enum SealedBox {
    static let suite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly
    public static let suiteName = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/ChaCha20Poly1305"

    /// The id of an X25519 public key: 16 hex digits of the SHA-256 of its raw 32 bytes.
    public static func keyID(of key: Curve25519.KeyAgreement.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// `plaintext` sealed to `recipient`: the encapsulated key and the ciphertext, base64.
    public static func seal(
        _ plaintext: Data, to recipient: Curve25519.KeyAgreement.PublicKey, info: String, associatedData: Data
    ) throws -> (encapsulatedKey: String, ciphertext: String) {
        var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: suite, info: Data(info.utf8))
        let ciphertext = try sender.seal(plaintext, authenticating: associatedData)
        return (sender.encapsulatedKey.base64EncodedString(), ciphertext.base64EncodedString())
    }

    /// Opens what ``seal(_:to:info:associatedData:)`` made; `what` names it in the errors
    /// (not base64: `invalid-argument`; changed, damaged or another key's: `archive-corrupt`).
    public static func open(
        encapsulatedKey: String, ciphertext: String, with identity: Curve25519.KeyAgreement.PrivateKey, info: String,
        associatedData: Data, what: String
    ) throws -> Data {
        guard let encapsulated = Data(base64Encoded: encapsulatedKey), let sealed = Data(base64Encoded: ciphertext)
        else {
            throw BackupError(.invalidArgument, "\(what) has an encapsulated key or ciphertext that is not base64.")
        }
        do {
            var receiver = try HPKE.Recipient(
                privateKey: identity, ciphersuite: suite, info: Data(info.utf8), encapsulatedKey: encapsulated)
            return try receiver.open(sealed, authenticating: associatedData)
        } catch {
            throw BackupError(
                .archiveCorrupt, "\(what) does not open with this identity: it was changed or damaged (\(error)).")
        }
    }
}
