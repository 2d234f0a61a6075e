import BackupCore
import BackupProtocol
import Foundation

/// What follows a task's result: the life cycle (``TaskQueue/complete(_:by:_:)``), then the
/// findings into the catalog as far as the task vouches for them, repairs of the copies a
/// verify quarantined, a repair that failed for good taken from the next verified copy, and
/// repairs that waited for a source once a copy is proven intact; then the run driver is woken.
public struct TaskResults: Sendable {
    let queue: TaskQueue
    let catalog: Catalog
    let desk: TransferDesk
    let signals: TaskSignals
    let wallClock: any WallClock
    let previews: RecoveryPreviews
    /// Counts each accepted result (`/metrics`).
    let metrics: SiteMetrics?

    public func accept(_ id: Int64, from node: String, _ result: ResultRequest) async throws -> TaskInfo {
        let completion: TaskQueue.Completion
        do {
            completion = try await queue.record(id, by: node, result)
        } catch let error as BackupError where Self.lateCodes.contains(error.code) {
            try await recordLate(id, from: node, result, refusal: error)
            throw error
        }
        var task = completion.task
        let now = wallClock.currentDate
        if completion.applied { metrics?.taskFinished(task) }
        if task.kind == .recover, task.state == .succeeded, let sealed = result.sealed, sealed.task == id {
            // For the admin's CLI only; the catalog holds the task's one-line summary.
            await previews.keep(sealed, task: id, now: now)
        }
        // Only the holder of the current lease gets here, and a result sent again was recorded:
        // it gets its receipts again.
        guard completion.applied else { return try await withReceipts(task, result, node: node, now: now) }
        if let report = result.artifacts {
            var authority = Self.authority(of: task, node: node)
            if task.kind == .inventory, try await catalog.rebuilding() { authority = .rebuild(keys: desk.receiptKeys) }
            try await catalog.record(report, node: node, authority: authority, now: now)
            if case .rebuild = authority { try await catalog.noteRebuildRecorded(task.id) }
            task = try await withReceipts(task, result, node: node, now: now)
            if task.kind == .verify { _ = try await desk.scheduleRepairs(report, node: node, now: now) }
            // A copy the catalog lists that a complete listing lacks is now missing: sent again.
            if task.kind == .inventory, report.complete { _ = try await desk.repairMissing(on: node, now: now) }
            if task.kind == .verify || task.kind == .transfer {
                _ = try await desk.repairWaiting(report, node: node, now: now)
            }
        }
        if task.kind == .transfer, task.state == .failed, let order = task.transfer, order.purpose == .repair {
            _ = try await desk.repairAgain(order, now: now)
        }
        // A finished task may move a run on.
        if task.state.isFinal { await signals.signal(TaskSignals.runs) }
        return task
    }

    /// A backup's answer with the receipt of each of the origin's own artifacts the catalog
    /// now holds a reference of (``TransferDesk/receipt(ofPath:now:)``).
    private func withReceipts(_ task: TaskInfo, _ result: ResultRequest, node: String, now: Date) async throws
        -> TaskInfo
    {
        guard task.kind == .backup, task.node == node, let report = result.artifacts else { return task }
        var receipts: [String] = []
        for copy in report.copies where copy.origin == node {
            if let receipt = try await desk.receipt(ofPath: copy.path, now: now) { receipts.append(receipt) }
        }
        var answered = task
        answered.receipts = receipts.isEmpty ? nil : receipts
        return answered
    }

    /// The refusals of a result that came too late to be the task's outcome.
    static let lateCodes: Set<BackupError.Code> = [.leaseExpired, .staleFencingToken, .notLeaseHolder, .taskFinished]

    /// A late result is not the task's outcome, but what it proves goes into the catalog: the
    /// artifact a backup made on the task's own node (so it is not made again), a copy the
    /// task's receiver computed (believed only when its digest equals the reference), what a
    /// purge on its node deleted. A late verify or inventory may be stale and is dropped.
    private func recordLate(_ id: Int64, from node: String, _ result: ResultRequest, refusal: BackupError) async throws
    {
        guard let report = result.artifacts, result.reportedFailure == nil, let task = try await queue.store.task(id)
        else { return }
        let authority: ReportAuthority
        switch task.kind {
        case .backup where task.node == node, .purge where task.node == node,
            .transfer where task.transfer?.receiver == node:
            authority = Self.authority(of: task, node: node)
        default: return
        }
        try await catalog.record(report, node: node, authority: authority, now: wallClock.currentDate)
        queue.logger.notice(
            "late result: its facts recorded, not the task's outcome",
            metadata: ["scm.task": "\(id)", "scm.node": "\(node)", "scm.code": "\(refusal.code.rawValue)"])
    }

    /// What a task's result may tell the catalog, from what the task asked (see ``ReportAuthority``).
    static func authority(of task: TaskInfo, node: String) -> ReportAuthority {
        switch task.kind {
        case .backup:
            let sources = [task.definition?.name, task.definition?.svnSource?.name].compactMap { $0 }
            return .originBackup(sources: Set(sources))
        case .verify: return .verify
        case .inventory: return .inventory
        case .purge:
            // A trash restore puts back copies the coordinator's own order named: received as
            // under a ticket, judged against the catalog's digests.
            if let restored = task.trash?.restore, !restored.isEmpty { return .receipt(paths: Set(restored)) }
            return .purge(paths: Set(task.artifacts ?? []))
        case .transfer:
            guard let order = task.transfer, order.receiver == node else { return .unsolicited }
            return .receipt(paths: [order.path])
        case .recover:
            // A recovery reads into scratch, never into a store: it tells the catalog nothing.
            return .unsolicited
        }
    }
}
