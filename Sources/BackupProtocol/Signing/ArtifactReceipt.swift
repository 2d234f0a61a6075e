import BackupCore
import Crypto
import Foundation

/// The coordinator's signed statement of what an artifact is: its path, size and digests as
/// the origin's own backup result reported them, and the catalog's facts of it. It is stored
/// beside the DNA as `<artifact>.dna.sig` (a ``SignedEnvelope`` of type
/// `scm-backup-receipt/1`, signed with the ticket key) on the origin and on every node a copy
/// reaches, so that a catalog rebuilt from the stores (`scm-backup catalog rebuild`) takes a
/// reference digest only from a receipt that verifies with a key it trusts, never from a
/// sidecar anyone could have written. See `Protocol/store.md`.
public struct ArtifactReceipt: Codable, Sendable, Equatable {
    public static let format = "scm-backup-receipt/1"
    /// The file name suffix of a receipt beside its artifact.
    public static let suffix = ".dna.sig"

    public var format: String
    /// The catalog that signed it (its random epoch).
    public var epoch: String
    /// The artifact, store-relative (`<origin>/<kind>/<source>/YYYY/MM/DD/HHMMSS/<file>`).
    public var path: String
    public var size: Int64
    public var sha256: String?
    public var md5: String?
    /// Origin, kind, source, revision, creation at the origin and regression flags.
    public var facts: TransferTicket.Facts
    public var signedAt: Date

    public init(
        epoch: String, path: String, size: Int64, sha256: String?, md5: String?, facts: TransferTicket.Facts,
        signedAt: Date
    ) {
        format = Self.format
        self.epoch = epoch
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.facts = facts
        self.signedAt = signedAt
    }

    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        try SignedEnvelope.seal(try WireJSON.encoder().encode(self), type: Self.format, with: key)
    }

    /// Opens a receipt whose signature verifies with one of `keys`; refusals are
    /// `receipt-malformed` and `receipt-forged`.
    public static func verify(_ envelope: String, keys: SigningKeyring) throws(SignedEnvelope.Refusal)
        -> ArtifactReceipt
    {
        let text = envelope.trimmingCharacters(in: .whitespacesAndNewlines)
        let payload = try SignedEnvelope.open(text, type: format, keys: keys, what: "receipt", codePrefix: "receipt")
        let receipt: ArtifactReceipt
        do { receipt = try WireJSON.decoder().decode(ArtifactReceipt.self, from: payload) } catch {
            throw .init(code: .receiptMalformed, message: "The receipt does not decode: \(WireJSON.describe(error)).")
        }
        guard receipt.format == format else {
            throw .init(code: .receiptMalformed, message: "Receipt format '\(receipt.format)' is not \(format).")
        }
        return receipt
    }

    /// Decodes a receipt without checking its signature, for a node that trusts no key and so
    /// can only check that the receipt names its own copy before keeping it; whoever relies on
    /// it (a catalog being rebuilt) verifies it with ``verify(_:keys:)``.
    public static func decodeUnverified(_ envelope: String) throws(SignedEnvelope.Refusal) -> ArtifactReceipt {
        let text = envelope.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let payload = SignedEnvelope.unverifiedPayload(text) else {
            throw .init(code: .receiptMalformed, message: "The receipt is not <key id>.<payload>.<signature>.")
        }
        let receipt: ArtifactReceipt
        do { receipt = try WireJSON.decoder().decode(ArtifactReceipt.self, from: payload) } catch {
            throw .init(code: .receiptMalformed, message: "The receipt does not decode: \(WireJSON.describe(error)).")
        }
        guard receipt.format == format else {
            throw .init(code: .receiptMalformed, message: "Receipt format '\(receipt.format)' is not \(format).")
        }
        return receipt
    }

    /// Why this receipt is not one of the artifact at `path` with `digests`, or nil when it is.
    public func mismatch(path: String, digests: ArtifactDigests) -> String? {
        if self.path != path { return "it is the receipt of '\(self.path)', not of '\(path)'" }
        if size != digests.size { return "it says \(size) bytes, the artifact has \(digests.size)" }
        if let want = sha256, let have = digests.sha256, want != have {
            return "it says sha256 \(want), the artifact's is \(have)"
        }
        if sha256 == nil || digests.sha256 == nil, let want = md5, let have = digests.md5, want != have {
            return "it says md5 \(want), the artifact's is \(have)"
        }
        if (sha256 == nil || digests.sha256 == nil) && (md5 == nil || digests.md5 == nil) {
            return "it and the artifact share no digest"
        }
        return nil
    }
}
