import BackupCore
import BackupProtocol
import Foundation

/// What follows a task's result: the life cycle (``TaskQueue/complete(_:by:_:)``), then the
/// findings into the catalog as far as the task vouches for them, repairs of the copies a
/// verify quarantined, and a repair that failed for good taken from the next verified copy.
public struct TaskResults: Sendable {
    let queue: TaskQueue
    let catalog: Catalog
    let desk: TransferDesk
    let wallClock: any WallClock

    public func accept(_ id: Int64, from node: String, _ result: ResultRequest) async throws -> TaskInfo {
        let task = try await queue.complete(id, by: node, result)
        let now = wallClock.currentDate
        // Only the holder of the current lease gets here.
        if let report = result.artifacts {
            try await catalog.record(report, node: node, authority: Self.authority(of: task, node: node), now: now)
            if task.kind == .verify { _ = try await desk.scheduleRepairs(report, node: node, now: now) }
        }
        if task.kind == .transfer, task.state == .failed, let order = task.transfer, order.purpose == .repair {
            _ = try await desk.repairAgain(order, now: now)
        }
        return task
    }

    /// What a task's result may tell the catalog, from what the task asked (see ``ReportAuthority``).
    static func authority(of task: TaskInfo, node: String) -> ReportAuthority {
        switch task.kind {
        case .backup:
            let sources = [task.definition?.name, task.definition?.svnSource?.name].compactMap { $0 }
            return .originBackup(sources: Set(sources))
        case .verify: return .verify
        case .inventory: return .inventory
        case .purge: return .purge(paths: Set(task.artifacts ?? []))
        case .transfer:
            guard let order = task.transfer, order.receiver == node else { return .unsolicited }
            return .receipt(paths: [order.path])
        }
    }
}
