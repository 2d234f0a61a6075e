import BackupCore
import Crypto
import Foundation

extension SealedPreview {
    /// `preview` sealed to the raw X25519 key `keyBase64` for task `task`.
    public static func seal(_ preview: FolderPreview, task: Int64, keyBase64: String) throws -> SealedPreview {
        guard let raw = Data(base64Encoded: keyBase64) else {
            throw BackupError(.invalidArgument, "The preview key of task \(task) is not base64.")
        }
        let key: Curve25519.KeyAgreement.PublicKey
        do { key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) } catch {
            throw BackupError(
                .invalidArgument,
                "The preview key of task \(task) is not a raw X25519 public key (\(raw.count) bytes): \(error).")
        }
        let recipient = SealedBox.keyID(of: key)
        let box = try SealedBox.seal(
            try WireJSON.encoder().encode(preview), to: key, info: format,
            associatedData: associatedData(task: task, recipient: recipient))
        return SealedPreview(
            format: format, task: task, recipient: recipient, encapsulatedKey: box.encapsulatedKey,
            ciphertext: box.ciphertext)
    }

    /// Opens it with the CLI's one-time key; refused for another format, task or key, or bytes
    /// changed on the way.
    public func open(with identity: Curve25519.KeyAgreement.PrivateKey, task expected: Int64) throws -> FolderPreview {
        guard format == Self.format, task == expected, recipient == SealedBox.keyID(of: identity.publicKey) else {
            throw BackupError(
                .refused,
                "The preview answered is of format '\(format)', task \(task), key \(recipient): not this CLI's preview of task \(expected)."
            )
        }
        let plaintext = try SealedBox.open(
            encapsulatedKey: encapsulatedKey, ciphertext: ciphertext, with: identity, info: Self.format,
            associatedData: Self.associatedData(task: task, recipient: recipient), what: "The preview of task \(task)")
        do { return try WireJSON.decoder().decode(FolderPreview.self, from: plaintext) } catch {
            throw BackupError(
                .invalidArgument, "The preview of task \(task) opened but does not decode: \(WireJSON.describe(error))."
            )
        }
    }
}
