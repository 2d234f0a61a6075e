import BackupCore
import BackupProtocol
import Foundation

/// An operator's task, checked against the site and the catalog before it is queued:
/// operators name configured nodes, sources and catalogued copies only, never paths.
public struct TaskSubmission: Sendable {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let queue: TaskQueue
    let hasPurgeKey: Bool
    let wallClock: any WallClock

    /// Checks and queues `body`; a verify by age or budget names the copies due.
    public func submit(_ body: SubmitTaskRequest) async throws -> TaskInfo {
        let definition = try await check(body)
        var request = body
        if body.kind == .verify, body.olderThanDays != nil || body.budgetBytes != nil {
            let due = try await catalog.verificationDue(
                node: body.node, olderThan: Double(body.olderThanDays ?? 0) * 86400, budget: body.budgetBytes,
                now: wallClock.currentDate)
            guard !due.isEmpty else {
                throw BackupError(
                    .nothingDue,
                    "Every copy on '\(body.node)' was verified within \(body.olderThanDays ?? 0) days; nothing to verify."
                )
            }
            request.artifacts = due
        }
        return try await queue.submit(request, definition: definition)
    }

    /// The definition of a backup's source; throws for anything the site or catalog does not allow.
    func check(_ body: SubmitTaskRequest) async throws -> SourceDefinition? {
        guard let node = site.node(body.node) else {
            throw BackupError(
                .unknownNode, "Node '\(body.node)' is not in the site configuration; no task can be queued for it.")
        }
        switch body.kind {
        case .backup:
            guard let name = body.source else {
                throw BackupError(.malformedJSON, "A backup task needs field \"source\".")
            }
            guard let definition = node.sources[name] else {
                let known = node.sources.keys.sorted().joined(separator: ", ")
                throw BackupError(
                    .unknownSource,
                    "Node '\(node.name)' has no source '\(name)' in the site configuration"
                        + (known.isEmpty ? "." : " (it has: \(known))."))
            }
            return definition
        case .purge:
            guard let paths = body.artifacts, !paths.isEmpty else {
                throw BackupError(.malformedJSON, "A purge task needs field \"artifacts\" (paths).")
            }
            guard paths.count <= PurgeStage.orderLimit else {
                throw BackupError(
                    .invalidArgument,
                    "A purge names at most \(PurgeStage.orderLimit) copies (a signed order is at most 64 KiB); this one names \(paths.count): split it."
                )
            }
            guard hasPurgeKey else {
                throw BackupError(
                    .noPurgeKey,
                    "The coordinator has no purge_key configured, so it cannot sign purge orders; add purge_key to [coordinator]."
                )
            }
            let held = try await catalog.copyStates(node: node.name)
            if let missing = paths.first(where: { held[$0] == nil }) {
                throw BackupError(
                    .unknownArtifact,
                    "The catalog knows no copy '\(missing)' on node '\(node.name)'; run an inventory of it first.")
            }
            // Guarantee 4: a mutant is quarantined and repaired, never purged.
            if let suspect = paths.first(where: { held[$0]?.failedVerification == true }) {
                throw BackupError(
                    .mutantCopy,
                    "Copy '\(suspect)' on node '\(node.name)' failed verification (\(held[suspect]?.rawValue ?? "?")): it is kept for quarantine and repair, not purged."
                )
            }
            return nil
        case .verify, .inventory:
            return nil
        case .transfer:
            throw BackupError(
                .useTransfers,
                "Transfers are ordered with POST /v1/transfers (scm-backup transfer), which signs their tickets.")
        case .recover:
            throw BackupError(
                .useTransfers,
                "Recoveries are ordered with POST /v1/recoveries (scm-backup recover --node), which picks the copy and signs the tickets."
            )
        }
    }
}
