import BackupCore
import BackupProtocol
import Foundation

/// What the task queue and the transfer desk need of storage: tasks and their life cycles,
/// each change in one transaction. The catalog implements it; the domain tests use a store in
/// memory, so the queue's rules are tested without SQLite or sockets.
public protocol TaskStore: Sendable {
    /// Queues a task; returns it.
    func submit(
        _ request: SubmitTaskRequest, definition: SourceDefinition?, transfer: TransferOrder?, now: Date,
        maxAttempts: Int
    ) async throws -> TaskInfo
    /// Expires overdue leases, then leases `node`'s oldest queued task that may go now (for
    /// `confirmWithin` until the agent confirms it, when given; ``TaskLifecycle``), while the
    /// node holds fewer than `maxTasks` leases. A purge goes only to a node that holds no other
    /// lease, and nothing goes beside a purge (it deletes what a verify or transfer may read).
    func leaseNext(
        for node: String, now: Date, duration: TimeInterval, confirmWithin: TimeInterval?, maxTasks: Int
    ) async throws -> TaskInfo?
    /// Applies `change` to task `id` (nil: no such task); a refusal leaves it unchanged.
    func updateTask(
        _ id: Int64, progress: TaskProgress?, detail: String?,
        _ change: @escaping @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
    ) async throws -> TaskInfo?
    /// Tasks newest first, as `query` selects them.
    func tasks(_ query: TaskListQuery) async throws -> [TaskInfo]
    /// Task `id`, or nil when there is none.
    func task(_ id: Int64) async throws -> TaskInfo?
    /// The version `node` registered with, if any.
    func version(of node: String) async throws -> String?
}

extension Catalog: TaskStore {}
