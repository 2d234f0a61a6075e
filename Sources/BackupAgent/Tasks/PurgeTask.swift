import BackupCore
import BackupProtocol
import Foundation
import Logging

/// A purge task: refused while this node's own pause switch is on; else the signed order
/// checked against this node, task and lease and the store's ledger, then exactly its copies
/// moved to the trash within the node's floors (``PurgeFloors``; a copy whose bytes are not
/// the order's is quarantined instead). Each copy a floor keeps is named in the result. The
/// trash's batches older than `trash_hours` are freed first.
extension TaskRunner {
    static func purge(
        _ envelope: String, _ task: TaskInfo, _ configuration: AgentConfiguration, _ progress: ProgressBox
    ) throws -> TaskOutcome {
        let pauseFile = configuration.storePath + "/" + AgentConfiguration.purgePauseFile
        if configuration.purgePaused || FileManager.default.fileExists(atPath: pauseFile) {
            throw BackupError(
                .refused,
                "Purging is paused on node '\(configuration.node)' ("
                    + (configuration.purgePaused
                        ? "purge_paused = true in \(configuration.file)" : "'\(pauseFile)' exists")
                    + "); purge task \(task.id) is refused and nothing was deleted.")
        }
        let keys = try configuration.purgeKeys()
        guard !keys.isEmpty else {
            throw BackupError(
                .refused,
                "Node '\(configuration.node)' has no purge_key or trusted_purge_keys in its agent.toml, so it carries out no purge order; nothing was deleted."
            )
        }
        let order: PurgeOrder
        do throws(SignedEnvelope.Refusal) {
            order = try PurgeOrder.verify(
                envelope, keys: keys, node: configuration.node, taskId: task.id, fencingToken: task.fencingToken)
        } catch {
            throw BackupError(
                .refused, "Purge task \(task.id) is refused (\(error.code)): \(error.message) Nothing was deleted.")
        }
        let store = try storeForReading(configuration)
        try store.updateLedger { ledger in
            if let refusal = ledger.refusal(
                epoch: order.epoch, task: order.taskId, token: order.fencingToken, id: order.id)
            {
                throw BackupError(
                    .refused, "Purge order \(order.id) is refused: \(refusal.reason). Nothing was deleted.")
            }
            ledger.note(
                epoch: order.epoch, task: order.taskId, token: order.fencingToken, spent: order.id,
                expiresAt: order.expiresAt, now: Date())
        }
        if let trash = order.trash { return try work(trash, store, progress) }
        let floors = configuration.floors
        if floors.trashHours > 0 { try store.emptyTrash(olderThan: floors.trashHours * 3600) }
        progress.set("deleting \(order.copies.count) artifacts")
        let expected = Dictionary(
            order.copies.map { ($0.path, ArtifactDigests(size: $0.size, sha256: $0.sha256, md5: $0.md5)) },
            uniquingKeysWith: { first, _ in first })
        let items = try store.purge(exactly: order.copies.map(\.path), expected: expected, floors: floors)
        let relative = { (item: PurgeItem) in String(item.artifact.path.dropFirst(store.root.count + 1)) }
        let deleted = items.filter { !$0.keep }.map(relative)
        let kept = items.filter(\.keep).map { "\(relative($0)) (\($0.reasons.joined(separator: ", ")))" }
        // A copy whose bytes were not the order's is quarantined and reported as such.
        let quarantined = items.filter { $0.quarantined != nil }.compactMap { item -> CopyReport? in
            guard let location = item.artifact.location else { return nil }
            return copyReport(
                location, size: item.artifact.size, dna: nil, state: .quarantined,
                problem: item.reasons.joined(separator: "; "))
        }
        return TaskOutcome(
            detail: "deleted \(deleted.count) artifacts"
                + (kept.isEmpty ? "" : "; kept \(kept.joined(separator: ", "))"),
            artifacts: ArtifactReport(complete: false, copies: quarantined, deleted: deleted))
    }

    /// A signed trash order: put copies back (each verified against its sidecar and reported,
    /// so that the catalog lists it again), free batches, or list what the trash holds.
    static func work(_ order: TrashOrder, _ store: Store, _ progress: ProgressBox) throws -> TaskOutcome {
        var lines: [String] = []
        var copies: [CopyReport] = []
        for path in order.restore ?? [] {
            progress.set("restoring \(path)")
            let artifact = try store.restoreFromTrash(path)
            guard let location = artifact.location else { continue }
            let check = store.verify(artifact)
            let intact = check.status == .intact
            copies.append(
                copyReport(
                    location, size: artifact.size, dna: intact ? check.dna : nil, state: intact ? .intact : .unverified,
                    verifiedAt: intact ? Date() : nil,
                    problem: intact ? nil : "restored from the trash; does not verify"))
            lines.append("restored \(path)\(intact ? "" : " (it does not verify against its sidecar)")")
        }
        for path in order.removeQuarantined ?? [] {
            // Refused by name and kept when its artifact is not here intact (the store's own floor).
            do {
                try store.removeQuarantined(path)
                lines.append("removed \(path)")
            } catch let error as BackupError where error.code == .refused {
                lines.append("kept \(path): \(error.message)")
            }
        }
        if let age = order.emptyOlderThanSeconds {
            let gone = try store.emptyTrash(olderThan: age)
            lines.append(
                "freed \(gone.count) copies (\(gone.map(\.size).reduce(0, +)) bytes) deleted over \(Int(age)) s ago")
        }
        if order.restore == nil && order.emptyOlderThanSeconds == nil && order.removeQuarantined == nil {
            let entries = try store.trashEntries()
            lines.append("\(entries.count) copies in the trash, \(try store.trashBytes()) bytes")
            lines += entries.map { "\($0.path) \($0.size) bytes, deleted \(WireJSON.format($0.deletedAt))" }
        }
        return TaskOutcome(
            detail: lines.joined(separator: "\n"),
            artifacts: copies.isEmpty ? nil : ArtifactReport(complete: false, copies: copies))
    }
}
