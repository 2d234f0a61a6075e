import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Logging
import Testing

/// The task queue as a domain type: no SQLite, no socket, a manual clock. Long polls, retries
/// by failure code, refusals to an old agent and lease refusals as registered codes.
@Suite(.timeLimit(.minutes(5)))
struct TaskQueueTests {
    /// Tasks in memory, by the same ``TaskLifecycle`` rules the catalog applies.
    actor MemoryStore: TaskStore {
        var rows: [Int64: (task: TaskInfo, lifecycle: TaskLifecycle)] = [:]
        var nextId: Int64 = 1
        var token: UInt64 = 0
        var versions: [String: String] = [:]

        func setVersion(_ version: String, of node: String) { versions[node] = version }

        func submit(
            _ request: SubmitTaskRequest, definition: SourceDefinition?, transfer: TransferOrder?, now: Date,
            maxAttempts: Int
        ) -> TaskInfo {
            let lifecycle = TaskLifecycle(maxAttempts: maxAttempts)
            let task = TaskInfo(
                id: nextId, kind: request.kind, node: request.node, source: request.source, state: .queued, attempts: 0,
                fencingToken: 0, leaseExpiresAt: nil, lastError: nil, createdAt: now, definition: definition,
                artifacts: request.artifacts, transfer: transfer)
            rows[nextId] = (task, lifecycle)
            nextId += 1
            return task
        }

        func leaseNext(
            for node: String, now: Date, duration: TimeInterval, confirmWithin: TimeInterval?, maxTasks: Int
        ) throws -> TaskInfo? {
            for id in rows.keys.sorted() where rows[id]?.lifecycle.expire(now: now) == true {
                rows[id] = rows[id].map { (Self.info($0.task, $0.lifecycle), $0.lifecycle) }
            }
            let held = rows.values.filter { $0.task.node == node && $0.lifecycle.state == .leased }.count
            guard held < maxTasks else { return nil }
            for id in rows.keys.sorted() {
                guard var row = rows[id], row.task.node == node else { continue }
                _ = row.lifecycle.expire(now: now)
                guard row.lifecycle.state == .queued, (row.lifecycle.notBefore ?? now) <= now else {
                    rows[id] = (Self.info(row.task, row.lifecycle), row.lifecycle)
                    continue
                }
                token += 1
                try row.lifecycle.lease(
                    to: node, token: token, now: now, duration: duration, confirmWithin: confirmWithin)
                rows[id] = (Self.info(row.task, row.lifecycle), row.lifecycle)
                return rows[id]?.task
            }
            return nil
        }

        func updateTask(
            _ id: Int64, progress: TaskProgress?, detail: String?,
            _ change: @escaping @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
        ) throws -> TaskInfo? {
            guard var row = rows[id] else { return nil }
            try change(&row.lifecycle)
            row.task.detail = detail ?? row.task.detail
            rows[id] = (Self.info(row.task, row.lifecycle), row.lifecycle)
            return rows[id]?.task
        }

        func tasks(_ query: TaskListQuery) -> [TaskInfo] {
            rows.keys.sorted(by: >).compactMap { rows[$0]?.task }.filter { task in
                (query.states.map { $0.contains(task.state) } ?? true) && (query.before.map { task.id < $0 } ?? true)
            }.prefix(query.limit).map { $0 }
        }

        func task(_ id: Int64) -> TaskInfo? { rows[id]?.task }

        func version(of node: String) -> String? { versions[node] }

        static func info(_ task: TaskInfo, _ lifecycle: TaskLifecycle) -> TaskInfo {
            var task = task
            task.state = lifecycle.state
            task.attempts = lifecycle.attempts
            task.fencingToken = lifecycle.fencingToken
            task.leaseExpiresAt = lifecycle.leaseExpiresAt
            task.lastError = lifecycle.lastError
            task.lastErrorCode = lifecycle.lastErrorCode
            task.retryAt = lifecycle.notBefore
            return task
        }
    }

    static func queue(_ store: MemoryStore, clock: ManualClock) -> TaskQueue {
        var config = CoordinatorConfiguration(
            certificate: "", privateKey: "", caCertificate: "", revocationList: nil, database: "",
            site: CoordinatorHarness.site)
        config.leaseSeconds = 60
        config.retrySeconds = 10
        return TaskQueue(
            store: store, configuration: config, wallClock: clock, clock: clock, logger: Logger(label: "test"))
    }

    @Test func aLongPollIsWokenByTheTaskQueuedWhileItWaitsAndEndsEmptyAtItsDeadline() async throws {
        let clock = ManualClock()
        let store = MemoryStore()
        let queue = Self.queue(store, clock: clock)
        async let leased = queue.lease(for: "srv1", waitSeconds: 20)
        try await clock.waitForSleepers()
        let queued = try await queue.submit(SubmitTaskRequest(kind: .inventory, node: "srv1"))
        let got = try await leased
        #expect(got?.id == queued.id && got?.state == .leased, "woken without the clock moving")

        async let nothing = queue.lease(for: "srv1", waitSeconds: 20)
        try await clock.waitForSleepers()
        clock.advance(by: .seconds(20))
        #expect(try await nothing == nil)
    }

    @Test func aFailureIsRetriedOrNotByItsCodeAndALateMessageGetsItsRefusalCode() async throws {
        let clock = ManualClock()
        let store = MemoryStore()
        let queue = Self.queue(store, clock: clock)
        let full = try await queue.submit(SubmitTaskRequest(kind: .inventory, node: "srv1"))
        let first = try #require(try await queue.lease(for: "srv1", waitSeconds: 0))
        let retried = try await queue.complete(
            full.id, by: "srv1",
            ResultRequest(fencingToken: first.fencingToken, failure: TaskFailure(code: .diskFull, message: "full")))
        #expect(retried.state == .queued && retried.lastErrorCode == .diskFull)
        #expect(retried.retryAt == clock.currentDate.addingTimeInterval(10))
        #expect(try await queue.lease(for: "srv1", waitSeconds: 0) == nil, "not before its retry time")
        clock.advance(by: .seconds(10))
        let second = try #require(try await queue.lease(for: "srv1", waitSeconds: 0))
        let refused = try await queue.complete(
            full.id, by: "srv1",
            ResultRequest(
                fencingToken: second.fencingToken,
                failure: TaskFailure(code: .refused, message: "Source 'etc' is outside source_roots.")))
        #expect(refused.state == .failed, "a refused source is not retried")

        // A message of the first lease is refused with the lifecycle's code.
        let stale = await #expect(throws: BackupError.self) {
            _ = try await queue.renew(
                full.id, by: "srv1", RenewRequest(fencingToken: first.fencingToken, progressed: true))
        }
        #expect(stale?.code == .taskFinished)
        let unknown = await #expect(throws: BackupError.self) {
            _ = try await queue.handBack(999, by: "srv1", token: 1)
        }
        #expect(unknown?.code == .unknownTask)
    }

    @Test func aTaskTheAgentIsTooOldForFailsAtOnceAndTheNextOneIsLeased() async throws {
        let clock = ManualClock()
        let store = MemoryStore()
        await store.setVersion("0.1.0", of: "srv1")
        let queue = Self.queue(store, clock: clock)
        let purge = try await queue.submit(SubmitTaskRequest(kind: .purge, node: "srv1", artifacts: ["x"]))
        let inventory = try await queue.submit(SubmitTaskRequest(kind: .inventory, node: "srv1"))
        let leased = try await queue.lease(for: "srv1", waitSeconds: 0)
        #expect(leased?.id == inventory.id)
        let failed = try #require(try await queue.list().first { $0.id == purge.id })
        #expect(failed.state == .failed && failed.lastErrorCode == .agentTooOld)
        #expect(failed.lastError?.contains("0.2.0") == true && failed.lastError?.contains("'0.1.0'") == true)
    }
}
