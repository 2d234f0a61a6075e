import BackupCore
import BackupProtocol
import Foundation
import Logging

/// Where an agent takes the coordinator's receipts (``ArtifactReceipt``) in: the answer to its
/// backup's result, and every ticket of a transfer it takes part in. A receipt is written beside
/// a copy only when it verifies with a key this node trusts for tickets (`ticket_key`,
/// `trusted_signing_keys`) and names that copy's path, size and digest; a node that trusts no
/// key checks the content alone (a catalog being rebuilt verifies it anyway). See
/// `Protocol/store.md`.
struct Receipts: Sendable {
    let keys: SigningKeyring
    let logger: Logger

    init(_ configuration: AgentConfiguration, logger: Logger) throws {
        keys = try configuration.ticketKeys()
        self.logger = logger
    }

    init(keys: SigningKeyring, logger: Logger) {
        self.keys = keys
        self.logger = logger
    }

    /// The receipt if it verifies and is of the artifact at `path` with `digests`; else the
    /// refusal (`receipt-forged`, `receipt-malformed`, `receipt-mismatch`), naming the path.
    func check(_ envelope: String, path: String, digests: ArtifactDigests) throws -> ArtifactReceipt {
        let receipt: ArtifactReceipt
        do throws(SignedEnvelope.Refusal) {
            receipt =
                keys.isEmpty
                ? try ArtifactReceipt.decodeUnverified(envelope) : try ArtifactReceipt.verify(envelope, keys: keys)
        } catch {
            throw BackupError(error.code, "The receipt of '\(path)' is refused: \(error.message)")
        }
        if let mismatch = receipt.mismatch(path: path, digests: digests) {
            throw BackupError(.receiptMismatch, "The receipt of '\(path)' is refused: \(mismatch).")
        }
        return receipt
    }

    /// Writes `envelope` beside this node's copy at `path` when it has none yet and the receipt
    /// checks against the copy's own sidecar; a refusal or a failed write is logged, and
    /// nothing present is overwritten. Returns whether it was written.
    @discardableResult
    func keep(_ envelope: String?, store: Store, path: String? = nil) -> Bool {
        guard let envelope else { return false }
        var metadata: Logger.Metadata = ["scm.path": "\(path ?? "-")"]
        do {
            // The path a receipt names only says which copy to check it against.
            let path = try path ?? ArtifactReceipt.decodeUnverified(envelope).path
            metadata["scm.path"] = "\(path)"
            let location = try store.location(ofRelative: path)
            let artifact = store.path(of: location)
            guard try Store.receipt(beside: artifact) == nil else { return false }
            let dna = try DNA.decode(try FileSystem.readSmallFile(artifact + ".dna"), path: artifact + ".dna")
            _ = try check(
                envelope, path: path, digests: ArtifactDigests(size: dna.size, sha256: dna.sha256, md5: dna.md5))
            try Store.writeReceipt(envelope, beside: artifact)
            return true
        } catch {
            logger.warning("a receipt is not kept", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
            return false
        }
    }
}
