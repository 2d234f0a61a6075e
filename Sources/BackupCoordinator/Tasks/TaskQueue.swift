import BackupCore
import BackupProtocol
import Foundation
import Logging

/// The task queue: leases with long polls, renewals, results and hand-backs, by the rules of
/// ``TaskLifecycle`` and ``RetryPolicy``, over a ``TaskStore``. It takes and returns domain
/// values and throws `BackupError`s whose codes are registered (``ErrorCodes``); it knows no
/// HTTP. Time comes from the injected clocks: instants from `wallClock`, waits on `clock`.
public struct TaskQueue: Sendable {
    let store: any TaskStore
    let signals: TaskSignals
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    /// Lease length, stall limit, first retry delay, longest long poll (CoordinatorConfiguration).
    let leaseSeconds: Double
    let stallSeconds: Double
    let retrySeconds: Double
    let maxWaitSeconds: Int
    let logger: Logger

    init(
        store: any TaskStore, signals: TaskSignals, wallClock: any WallClock, clock: any Clock<Duration>,
        leaseSeconds: Double, stallSeconds: Double, retrySeconds: Double, maxWaitSeconds: Int, logger: Logger
    ) {
        self.store = store
        self.signals = signals
        self.wallClock = wallClock
        self.clock = clock
        self.leaseSeconds = leaseSeconds
        self.stallSeconds = stallSeconds
        self.retrySeconds = retrySeconds
        self.maxWaitSeconds = maxWaitSeconds
        self.logger = logger
    }

    /// A queue over `store` with the settings of `configuration` (a test passes its own store
    /// and clocks).
    public init(
        store: any TaskStore, configuration: CoordinatorConfiguration, wallClock: any WallClock,
        clock: any Clock<Duration>, logger: Logger
    ) {
        self.init(
            store: store, signals: TaskSignals(), wallClock: wallClock, clock: clock,
            leaseSeconds: configuration.leaseSeconds, stallSeconds: configuration.stallSeconds,
            retrySeconds: configuration.retrySeconds, maxWaitSeconds: configuration.maxLeaseWaitSeconds,
            logger: logger)
    }

    /// Queues a checked task and wakes its node's pollers.
    public func submit(
        _ request: SubmitTaskRequest, definition: SourceDefinition? = nil, transfer: TransferOrder? = nil
    ) async throws -> TaskInfo {
        let task = try await store.submit(
            request, definition: definition, transfer: transfer, now: wallClock.currentDate, maxAttempts: 3)
        await signals.signal(request.node)
        return task
    }

    /// How long a lease given to an agent that confirms leases (``LeaseRequest/confirms``) waits
    /// for its confirming renewal (at most the lease itself).
    public static let confirmationWindow: TimeInterval = 5

    /// The next task for `node`, waiting up to `waitSeconds` (at most the configured longest
    /// wait) for one to be queued; nil when none came. A task the node's agent is too old for
    /// fails at once with `agent-too-old`, and the wait goes on for the next. With `confirms`
    /// the lease lasts ``confirmationWindow`` until the agent's first renewal; unconfirmed, it
    /// goes back at the sweeper's next look without counting an attempt (the agent is gone).
    public func lease(
        for node: String, waitSeconds: Int, confirms: Bool = false, maxTasks: Int = 1
    ) async throws -> TaskInfo? {
        var remaining = Duration.seconds(min(max(waitSeconds, 0), maxWaitSeconds))
        while true {
            // The ticket is taken before looking, so a task queued meanwhile still wakes us.
            let ticket = await signals.ticket(for: node)
            let leased: TaskInfo?
            do {
                leased = try await store.leaseNext(
                    for: node, now: wallClock.currentDate, duration: leaseSeconds,
                    confirmWithin: confirms ? Self.confirmationWindow : nil, maxTasks: maxTasks)
            } catch {
                await signals.finish(ticket, node: node)
                throw error
            }
            if let task = leased {
                await signals.finish(ticket, node: node)
                if confirms, let expiry = task.leaseExpiresAt { await signals.expectConfirmation(by: expiry) }
                if let why = AgentRequirements.refusal(kind: task.kind, agentVersion: try await store.version(of: node))
                {
                    try await refuseToOldAgent(task, node: node, why: why)
                    continue
                }
                logger.debug(
                    "task leased",
                    metadata: [
                        "scm.task": "\(task.id)", "scm.node": "\(node)", "scm.kind": "\(task.kind.rawValue)",
                        "scm.token": "\(task.fencingToken)", "scm.attempt": "\(task.attempts)",
                    ])
                return task
            }
            guard remaining > .zero else {
                await signals.finish(ticket, node: node)
                return nil
            }
            let (signals, clock, seconds) = (signals, clock, remaining.inSeconds)
            remaining -= await clock.measure { await signals.wait(ticket, node: node, atMost: seconds, clock: clock) }
        }
    }

    private func refuseToOldAgent(_ task: TaskInfo, node: String, why: String) async throws {
        let failure = TaskFailure(code: .agentTooOld, message: "Task \(task.id): \(why).")
        let now = wallClock.currentDate
        _ = try await apply(task.id) { (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
            try lifecycle.complete(
                by: node, token: task.fencingToken, now: now, failure: failure, rule: .permanent)
        }
        logger.warning(
            "task refused to an old agent",
            metadata: ["scm.task": "\(task.id)", "scm.node": "\(node)", "scm.reason": "\(why)"])
    }

    /// Extends `node`'s lease of task `id`.
    public func renew(_ id: Int64, by node: String, _ request: RenewRequest) async throws -> TaskInfo {
        let now = wallClock.currentDate
        let (leaseSeconds, stallSeconds) = (leaseSeconds, stallSeconds)
        let task = try await apply(id, progress: request.progress) {
            (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
            try lifecycle.renew(
                by: node, token: request.fencingToken, now: now, duration: leaseSeconds,
                progressed: request.progressed, stallLimit: stallSeconds)
        }
        logger.debug(
            "lease renewed",
            metadata: ["scm.task": "\(id)", "scm.node": "\(node)", "scm.progressed": "\(request.progressed)"])
        return task
    }

    /// Records the holder's result: a failure is judged by its code (``RetryPolicy``); a task
    /// to retry wakes its node's pollers.
    public func complete(_ id: Int64, by node: String, _ result: ResultRequest) async throws -> TaskInfo {
        try await record(id, by: node, result).task
    }

    /// What became of a result: applied now, or applied before (the holder sent it again).
    public struct Completion: Sendable {
        public var task: TaskInfo
        /// False for a result of the same lease applied before.
        public var applied: Bool
    }

    /// ``complete(_:by:_:)``, telling a fresh result from one sent again; other refusals throw.
    public func record(_ id: Int64, by node: String, _ result: ResultRequest) async throws -> Completion {
        do {
            return Completion(task: try await apply(id, by: node, result), applied: true)
        } catch let error as BackupError where error.code == .resultAlreadyApplied {
            guard let task = try await store.task(id) else {
                throw BackupError(.unknownTask, "There is no task \(id).")
            }
            logger.info("task result sent again; applied once", metadata: ["scm.task": "\(id)", "scm.node": "\(node)"])
            return Completion(task: task, applied: false)
        }
    }

    private func apply(_ id: Int64, by node: String, _ result: ResultRequest) async throws -> TaskInfo {
        let now = wallClock.currentDate
        let failure = result.reportedFailure
        let rule = failure.map { RetryPolicy.rule(for: $0.code) } ?? .permanent
        let retrySeconds = retrySeconds
        // The same body again is a re-sent journal entry; another body under the same lease is not.
        var accumulator = DigestAccumulator(.sha256)
        try WireJSON.encoder().encode(result).withUnsafeBytes { accumulator.update($0) }
        let digest = accumulator.finalize().sha256
        let task = try await apply(id, detail: result.detail) {
            (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
            try lifecycle.complete(
                by: node, token: result.fencingToken, now: now, failure: failure, rule: rule, retryDelay: retrySeconds,
                digest: digest)
        }
        logger.debug(
            "task result",
            metadata: [
                "scm.task": "\(id)", "scm.node": "\(node)", "scm.state": "\(task.state.rawValue)",
                "scm.code": "\(task.lastErrorCode?.rawValue ?? "-")",
            ])
        if task.state == .queued { await signals.signal(task.node) }  // A failure to retry.
        return task
    }

    /// Returns a leased task to the queue without counting an attempt (an agent stopping).
    public func handBack(_ id: Int64, by node: String, token: UInt64) async throws -> TaskInfo {
        let now = wallClock.currentDate
        let task = try await apply(id) { (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
            try lifecycle.handBack(by: node, token: token, now: now)
        }
        await signals.signal(task.node)
        return task
    }

    /// Every task, newest first.
    public func list(_ query: TaskListQuery = TaskListQuery()) async throws -> [TaskInfo] {
        try await store.tasks(query)
    }

    /// Applies a life-cycle change: `unknown-task` for no such task, the refusal's code
    /// (stale token, another holder, an expired lease, a finished task) otherwise.
    func apply(
        _ id: Int64, progress: TaskProgress? = nil, detail: String? = nil,
        _ change: @escaping @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
    ) async throws -> TaskInfo {
        do {
            guard let task = try await store.updateTask(id, progress: progress, detail: detail, change) else {
                throw BackupError(.unknownTask, "There is no task \(id).")
            }
            return task
        } catch let refusal as TaskLifecycle.Refusal {
            throw BackupError(refusal.code, "Task \(id): \(refusal.explanation).")
        }
    }
}
