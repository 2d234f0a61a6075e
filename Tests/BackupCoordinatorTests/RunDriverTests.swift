import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// Runs through the coordinator's own objects on the test clock (``RunDriver``): the backup
/// leased and reported as an agent would, the transfers it leads to queued on the nodes that
/// start them, a failed transfer leaving the source short, a hung backup timed out.
struct RunDriverTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static var site: SiteConfiguration {
        SiteConfiguration(
            nodes: [
                .init(
                    name: "srv1", roles: [.server], addresses: ["127.0.0.1"],
                    sources: ["conf": SourceDefinition(name: "conf", kind: .folder, path: "/etc/scm")]),
                .init(name: "vault1", roles: [.backup]), .init(name: "vault2", roles: [.backup]),
            ],
            pairings: [
                .init(server: "srv1", backup: "vault1", direction: .pull),
                .init(server: "srv1", backup: "vault2", direction: .pull),
            ])
    }

    static func coordinator(_ dir: TemporaryDirectory, clock: ManualClock) throws -> Coordinator {
        var config = CoordinatorConfiguration(
            certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"), caCertificate: dir.file("ca.pem"),
            revocationList: nil, database: dir.file("catalog.sqlite"), site: site)
        config.leaseSeconds = 3600
        config.stallSeconds = 3600
        return try Coordinator(
            configuration: config, catalog: try Catalog(path: config.database), wallClock: clock, clock: clock,
            logger: LogCapture().logger)
    }

    static func register(_ coordinator: Coordinator, _ names: [String], at now: Date) async throws {
        for name in names {
            try await coordinator.catalog.register(
                name: name, role: .agent,
                RegisterRequest(
                    version: "1.0.0", storePath: "/srv/store", diskTotal: 1 << 40, diskFree: 1 << 40, kinds: [],
                    agentClock: nil, dataPort: 9000), now: now)
        }
    }

    static let path = "srv1/folder/conf/2027/01/15/080000/conf.tar.gz"

    static func copy(_ state: CopyState, verifiedAt: Date? = nil) -> CopyReport {
        CopyReport(
            path: path, origin: "srv1", kind: "folder", source: "conf", stamp: "2027/01/15/080000", size: 10,
            sha256: String(repeating: "ab", count: 32), md5: nil, revision: nil, created: start, state: state,
            verifiedAt: verifiedAt)
    }

    /// Leases `node`'s next task and reports `report` (or `failure`) for it.
    static func work(
        _ coordinator: Coordinator, _ node: String, report: CopyReport? = nil, failure: TaskFailure? = nil
    ) async throws -> TaskInfo {
        let leased = try await coordinator.queue.lease(for: node, waitSeconds: 0)
        let all = try await coordinator.catalog.tasks().map {
            "\($0.id) \($0.node) \($0.state) \($0.retryAt.map { "\($0)" } ?? "")"
        }
        let task = try #require(leased, "\(node) has a task: \(all)")
        var result = ResultRequest(
            fencingToken: task.fencingToken, error: nil,
            artifacts: report.map { ArtifactReport(complete: false, copies: [$0]) })
        result.failure = failure
        return try await coordinator.results.accept(task.id, from: node, result)
    }

    @Test func aRunBacksUpThenQueuesATransferPerPairingAndEndsShortWhenOneFails() async throws {
        try await withTemporaryDirectory("run-driver") { dir in
            let clock = ManualClock(start: Self.start)
            let coordinator = try Self.coordinator(dir, clock: clock)
            try await Self.register(coordinator, ["srv1", "vault1", "vault2"], at: Self.start)
            let runs = coordinator.runs
            let driver = coordinator.runDriver
            let run = try await runs.start(
                try runs.select(node: nil, source: nil), trigger: .manual, requestedBy: "root")
            #expect(run.sources.map(\.state) == [.backingUp])
            // Nothing moves before the backup is done.
            #expect(try await driver.advanceAll() == 1)
            #expect(try await coordinator.catalog.tasks(ofRun: run.id).count == 1)

            _ = try await Self.work(coordinator, "srv1", report: Self.copy(.intact, verifiedAt: Self.start))
            try await driver.advanceAll()
            let transfers = try await coordinator.catalog.tasks(ofRun: run.id).filter { $0.kind == .transfer }
            // Pull pairings: each receiver starts its own.
            #expect(transfers.map(\.node).sorted() == ["vault1", "vault2"])
            #expect(transfers.allSatisfy { $0.transfer?.path == Self.path && $0.transfer?.direction == .pull })
            // Another look queues nothing again.
            try await driver.advanceAll()
            #expect(try await coordinator.catalog.tasks(ofRun: run.id).count == 3)

            _ = try await Self.work(coordinator, "vault1", report: Self.copy(.intact, verifiedAt: Self.start))
            _ = try await Self.work(
                coordinator, "vault2", failure: TaskFailure(code: .refused, message: "vault2 refuses the ticket"))
            #expect(try await driver.advanceAll() == 0)
            let ended = try await runs.show(run.id)
            #expect(ended.state == .partial)
            let source = try #require(ended.sources.first)
            #expect(source.state == .partial && source.verifiedCopies == 1)
            #expect(source.copies.first { $0.node == "vault1" }?.state == .verified)
            #expect(source.copies.first { $0.node == "vault2" }?.reason?.contains("refuses the ticket") == true)
            #expect(source.reason?.contains("1 of 2 verified copies") == true)

            // A year and more later the run keeps only its summary; a running one is never pruned.
            #expect(try await catalog(coordinator).pruneRuns(finishedBefore: Self.start) == 0)
            let later = Self.start.addingTimeInterval(401 * 86_400)
            #expect(try await catalog(coordinator).pruneRuns(finishedBefore: later) == 1)
            let pruned = try await runs.show(run.id)
            #expect(pruned.sources.isEmpty && pruned.summary == "1 sources: 1 partial" && pruned.state == .partial)
            #expect(try await catalog(coordinator).pruneRuns(finishedBefore: later) == 0, "once")
        }
    }

    func catalog(_ coordinator: Coordinator) -> Catalog { coordinator.catalog }

    @Test func aBackupPastItsMaxDurationTimesOutAndFailsItsSource() async throws {
        try await withTemporaryDirectory("run-timeout") { dir in
            let clock = ManualClock(start: Self.start)
            let coordinator = try Self.coordinator(dir, clock: clock)
            try await Self.register(coordinator, ["srv1", "vault1", "vault2"], at: Self.start)
            let run = try await coordinator.runs.start(
                [Runs.Selected(node: "srv1", source: "conf")], trigger: .manual)
            let leased = try #require(try await coordinator.queue.lease(for: "srv1", waitSeconds: 0))
            // A second run while it runs: the source is skipped, not backed up twice.
            let second = try await coordinator.runs.start(
                [Runs.Selected(node: "srv1", source: "conf")], trigger: .schedule)
            #expect(second.sources.first?.state == .skipped && second.state == .running)
            #expect(try await coordinator.runDriver.advance(second).state == .succeeded)
            // Renewed (its agent is alive) but hung past the 6 h limit: ended by the sweeper.
            var renewed = leased
            for _ in 0..<13 {
                clock.advance(by: .seconds(1800))
                renewed = try await coordinator.queue.renew(
                    leased.id, by: "srv1", RenewRequest(fencingToken: leased.fencingToken, progressed: true))
            }
            #expect(renewed.state == .leased)
            await coordinator.sweeper.sweep()
            let ended = try #require(try await coordinator.catalog.task(leased.id))
            #expect(ended.state == .failed && ended.lastErrorCode == .timeout)
            #expect(
                abs((ended.ownSeconds ?? 0) - 13 * 1800) < 0.01, "its own time, lease to end: \(ended.ownSeconds ?? -1)"
            )
            // Its holder's next renewal is refused, which stops its work.
            await #expect(throws: BackupError.self) {
                _ = try await coordinator.queue.renew(
                    leased.id, by: "srv1", RenewRequest(fencingToken: leased.fencingToken, progressed: true))
            }
            try await coordinator.runDriver.advanceAll()
            let source = try #require(try await coordinator.runs.show(run.id).sources.first)
            #expect(source.state == .failed && source.reason?.contains("max_duration") == true)
        }
    }

    @Test func aNodeHoldsAtMostMaxTasksLeasesAndAPurgeHoldsItsNodeAlone() async throws {
        try await withTemporaryDirectory("max-tasks") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Self.start
            func queue(_ kind: TaskKind, _ source: String? = nil) async throws -> TaskInfo {
                var request = SubmitTaskRequest(kind: kind, node: "srv1", source: source)
                if kind == .purge { request.artifacts = ["p"] }
                return try await catalog.submit(request, now: now)
            }
            func lease(_ maxTasks: Int) async throws -> TaskInfo? {
                try await catalog.leaseNext(for: "srv1", now: now, duration: 60, maxTasks: maxTasks)
            }
            let a = try await queue(.backup, "a")
            let b = try await queue(.backup, "b")
            let purge = try await queue(.purge)
            let verify = try await queue(.verify)
            #expect(try await lease(1)?.id == a.id)
            #expect(try await lease(1) == nil, "max_tasks 1: one at a time")
            #expect(try await lease(2)?.id == b.id, "max_tasks 2: a second beside it")
            // The purge waits while anything is leased; the verify after it may go.
            #expect(try await lease(3)?.id == verify.id)
            for done in [a, b, verify] {
                let leased = try #require(try await catalog.task(done.id))
                _ = try await catalog.updateTask(done.id) { (l: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                    try l.complete(
                        by: "srv1", token: leased.fencingToken, now: now, failure: nil, rule: .permanent)
                }
            }
            let more = try await queue(.verify)
            #expect(try await lease(3)?.id == purge.id, "alone now")
            #expect(try await lease(3) == nil, "nothing beside a purge")
            #expect(try await catalog.task(more.id)?.state == .queued)
        }
    }
}

extension RunDriverTests {
    static func copy(stamp: String, _ state: CopyState, at: Date) -> CopyReport {
        CopyReport(
            path: "srv1/folder/conf/\(stamp)/conf.tar.gz", origin: "srv1", kind: "folder", source: "conf", stamp: stamp,
            size: 10, sha256: String(repeating: "ab", count: 32), md5: nil, revision: nil, created: at, state: state,
            verifiedAt: at)
    }

    /// One run of srv1/conf to its end: the backup makes `stamp`, both vaults receive it.
    static func night(_ coordinator: Coordinator, stamp: String, at: Date) async throws -> RunInfo {
        let run = try await coordinator.runs.start([Runs.Selected(node: "srv1", source: "conf")], trigger: .manual)
        _ = try await work(coordinator, "srv1", report: copy(stamp: stamp, .intact, at: at))
        try await coordinator.runDriver.advanceAll()
        for vault in ["vault1", "vault2"] {
            _ = try await work(coordinator, vault, report: copy(stamp: stamp, .intact, at: at))
        }
        return run
    }

    @Test func aRunEndsWithOnePurgeStagePerHolderEvenAcrossARestart() async throws {
        try await withTemporaryDirectory("run-purge") { dir in
            _ = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            let clock = ManualClock(start: Self.start)
            var config = CoordinatorConfiguration(
                certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"),
                caCertificate: dir.file("ca.pem"), revocationList: nil, database: dir.file("catalog.sqlite"),
                site: Self.site)
            config.site.purge.table = .init(keepLast: 1)
            config.purgeKey = dir.file("ca/purge-signing.key")
            config.leaseSeconds = 3600
            config.stallSeconds = 3600
            let coordinator = try Coordinator(
                configuration: config, catalog: try Catalog(path: config.database), wallClock: clock, clock: clock,
                logger: LogCapture().logger)
            try await Self.register(coordinator, ["srv1", "vault1", "vault2"], at: Self.start)
            let first = try await Self.night(coordinator, stamp: "2027/01/15/080000", at: Self.start)
            try await coordinator.runDriver.advanceAll()
            // One artifact: nothing to purge, no task.
            #expect(try await coordinator.catalog.tasks(ofRun: first.id).filter { $0.kind == .purge }.isEmpty)
            clock.advance(by: .seconds(86_400))
            try await Self.register(coordinator, ["srv1", "vault1", "vault2"], at: clock.currentDate)
            let second = try await Self.night(
                coordinator, stamp: "2027/01/16/080000", at: Self.start.addingTimeInterval(86_400))
            // The hub dies after queueing the stage, before it marks the run finished: the stage
            // is queued, the run still runs.
            let shown = try await coordinator.runs.show(second.id)
            let tasks = try await coordinator.catalog.tasks(ofRun: second.id)
            try await coordinator.runDriver.purgeStage(shown, shown.sources, tasks)
            #expect(try await coordinator.runs.show(second.id).state == .running)
            // Its restart finishes the run and queues no second stage.
            try await coordinator.runDriver.advanceAll()
            #expect(try await coordinator.runs.show(second.id).state == .succeeded)
            let purges = try await coordinator.catalog.tasks(ofRun: second.id).filter { $0.kind == .purge }
            #expect(purges.map(\.node).sorted() == ["srv1", "vault1", "vault2"])
            #expect(purges.allSatisfy { $0.artifacts == ["srv1/folder/conf/2027/01/15/080000/conf.tar.gz"] })
            try await coordinator.runDriver.advanceAll()
            #expect(try await coordinator.catalog.tasks(ofRun: second.id).filter { $0.kind == .purge }.count == 3)
            // The last stage of each node is what status shows.
            let stages = try await coordinator.catalog.stages()
            #expect(stages.map(\.node) == ["srv1", "vault1", "vault2"] && stages.allSatisfy { $0.ordered == 1 })
        }
    }
}
