import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import ServiceLifecycle
import Testing

/// The lease sweeper on a manual clock: a dead agent's lease expires on its own, without
/// another lease request, and nothing happens before its time.
@Suite(.timeLimit(.minutes(5)))
struct LeaseSweeperTests {
    static func coordinator(
        _ dir: TemporaryDirectory, clock: ManualClock, logs: LogCapture, leaseSeconds: Double = 20
    ) throws -> Coordinator {
        var config = CoordinatorConfiguration(
            certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"), caCertificate: dir.file("ca.pem"),
            revocationList: nil, database: dir.file("catalog.sqlite"), site: CoordinatorHarness.site)
        config.leaseSeconds = leaseSeconds
        return try Coordinator(
            configuration: config, catalog: try Catalog(path: config.database), wallClock: clock, clock: clock,
            logger: logs.logger)
    }

    @Test func aDeadAgentsLeaseExpiresOnItsOwnAtTheNextSweep() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let logs = LogCapture()
            let coordinator = try Self.coordinator(dir, clock: clock, logs: logs)
            let catalog = coordinator.catalog
            let task = try await catalog.submit(
                SubmitTaskRequest(kind: .verify, node: "srv1"), now: clock.currentDate)
            let leased = try await #require(try catalog.leaseNext(for: "srv1", now: clock.currentDate, duration: 20))
            #expect(leased.id == task.id && leased.state == .leased)
            #expect(LeaseSweeper.interval(leaseSeconds: 20) == .seconds(5))

            try await withThrowingTaskGroup(of: Void.self) { group in
                let sweeper = coordinator.sweeper
                group.addTask { try await sweeper.run() }
                // Sweeps before the expiry change nothing.
                for _ in 0..<3 {
                    try await clock.waitForSleepers()
                    clock.advance(by: .seconds(5))
                }
                try await clock.waitForSleepers()
                await #expect(try catalog.tasks().first?.state == .leased, "15 s into a 20 s lease")
                // The sweep after the expiry returns it to the queue, with nobody asking for a lease.
                clock.advance(by: .seconds(5))
                try await clock.waitForSleepers()
                let after = try await #require(try catalog.tasks().first)
                #expect(after.state == .queued)
                #expect(after.lastError?.contains("the lease of srv1 expired") == true)
                #expect(
                    logs.lines.contains {
                        $0.message == "lease expired" && $0.level == .debug && $0.metadata["scm.task"] == "\(task.id)"
                    })
                group.cancelAll()
            }
        }
    }

    @Test func anUnconfirmedLeaseGoesBackJustAfterItsWindowNotAtTheNextRegularSweep() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let logs = LogCapture()
            let coordinator = try Self.coordinator(dir, clock: clock, logs: logs, leaseSeconds: 60)
            let catalog = coordinator.catalog
            #expect(LeaseSweeper.interval(leaseSeconds: 60) == .seconds(15))
            try await withThrowingTaskGroup(of: Void.self) { group in
                let sweeper = coordinator.sweeper
                group.addTask { try await sweeper.run() }
                try await clock.waitForSleepers()
                _ = try await catalog.submit(SubmitTaskRequest(kind: .verify, node: "srv1"), now: clock.currentDate)
                let lease = try await coordinator.queue.lease(for: "srv1", waitSeconds: 0, confirms: true)
                let leased = try #require(lease)
                #expect(leased.leaseExpiresAt == clock.currentDate.addingTimeInterval(TaskQueue.confirmationWindow))
                // The sweeper plans again for the window: it sweeps just past it, not in 15 s.
                var advanced = Duration.zero
                while try await catalog.tasks().first?.state == .leased, advanced < .seconds(14) {
                    try await clock.waitForSleepers()
                    clock.advance(by: .milliseconds(100))
                    advanced += .milliseconds(100)
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(advanced >= .seconds(5) && advanced < .seconds(7), "returned after \(advanced)")
                let after = try await #require(try catalog.tasks().first)
                #expect(after.state == .queued)
                #expect(after.attempts == 0)
                #expect(after.lastError?.contains("not confirmed in time") == true)
                group.cancelAll()
            }
        }
    }
}
