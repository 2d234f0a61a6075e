import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Logging
import Testing

@testable import BackupCoordinator

/// The scheduler on the test clock: a source fires at its times, a slot that comes while its
/// backup still runs is skipped, a restart fires nothing twice, and after the hub was down the
/// latest missed slot runs once within `catch_up_within`.
@Suite(.timeLimit(.minutes(3)))
struct SchedulerTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15 08:00:00 UTC

    static func site(_ expression: String, catchUp: Bool = true, within: TimeInterval = 86_400) throws
        -> SiteConfiguration
    {
        var defaults = SiteConfiguration.ScheduleDefaults()
        defaults.catchUp = catchUp
        defaults.catchUpWithin = within
        let env = SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env")
        let trac = SourceDefinition(
            name: "env-trac", kind: .trac, path: "/var/scm/tracs/env", svnSource: .init(name: "env", path: env.path))
        let schedule = try SourceSchedule(expression, zone: "UTC", source: "srv1/env")
        return SiteConfiguration(
            nodes: [
                .init(
                    name: "srv1", roles: [.server], sources: ["env": env, "env-trac": trac],
                    schedules: ["env": schedule, "env-trac": schedule]),
                .init(name: "vault", roles: [.backup]),
            ], schedule: defaults)
    }

    @Test func theLatestMissedSlotRunsOnceWithinCatchUpAndOlderOnesAreMissed() throws {
        let schedule = try SourceSchedule("0 * * * *", zone: "UTC", source: "a")
        let defaults = try Self.site("0 * * * *").schedule
        let decide = { (last: Date?, now: Date, d: SiteConfiguration.ScheduleDefaults) in
            Scheduler.decide(schedule, last: last, now: now, defaults: d)
        }
        let hour: TimeInterval = 3600
        #expect(decide(nil, Self.start, defaults) == .start(Self.start))
        #expect(decide(Self.start, Self.start.addingTimeInterval(30 * 60), defaults) == .none)
        // On time: just after the slot.
        #expect(
            decide(Self.start, Self.start.addingTimeInterval(hour + 1), defaults)
                == .fire(slot: Self.start.addingTimeInterval(hour), late: false))
        // Down for three days: 72 slots passed; the latest runs once, late.
        let back = Self.start.addingTimeInterval(72 * hour + 600)
        #expect(decide(Self.start, back, defaults) == .fire(slot: Self.start.addingTimeInterval(72 * hour), late: true))
        // Without catch-up, or past catch_up_within, it is recorded as missed.
        var off = defaults
        off.catchUp = false
        #expect(decide(Self.start, back, off) == .miss(slot: Self.start.addingTimeInterval(72 * hour)))
        var short = defaults
        short.catchUpWithin = 300
        #expect(decide(Self.start, back, short) == .miss(slot: Self.start.addingTimeInterval(72 * hour)))
    }

    @Test func aMinuteScheduleAfterAMonthAwayFindsTheLatestSlotWithoutWalkingThemAll() throws {
        let everyMinute = try SourceSchedule("* * * * *", zone: "UTC", source: "a")
        let back = Self.start.addingTimeInterval(30 * 86_400 + 30)
        let decision = Scheduler.decide(
            everyMinute, last: Self.start, now: back, defaults: try Self.site("* * * * *").schedule)
        #expect(decision == .fire(slot: Self.start.addingTimeInterval(30 * 86_400), late: false))
    }

    @Test func aPairedSvnSourceIsNotFiredOnItsOwn() throws {
        #expect(Scheduler.entries(try Self.site("*/5 * * * *")).map(\.key) == ["srv1/env-trac"])
    }

    @Test func aSourceFiresAtItsTimesIsSkippedWhileItRunsAndARestartFiresNothingTwice() async throws {
        try await withTemporaryDirectory("scheduler") { dir in
            let clock = ManualClock(start: Self.start)
            let logs = LogCapture()
            var config = CoordinatorConfiguration(
                certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"),
                caCertificate: dir.file("ca.pem"), revocationList: nil, database: dir.file("catalog.sqlite"),
                site: try Self.site("*/5 * * * *"))
            config.leaseSeconds = 20
            let catalog = try Catalog(path: config.database)
            let coordinator = try Coordinator(
                configuration: config, catalog: catalog, wallClock: clock, clock: clock, logger: logs.logger)
            let scheduler = coordinator.scheduler
            let entries = Scheduler.entries(config.site)

            // First look: the source is new, nothing fires; its next time is 08:05.
            let next = try await scheduler.look(entries)
            #expect(next == Self.start.addingTimeInterval(300))
            #expect(try await catalog.tasks().isEmpty)
            #expect(try await catalog.scheduleStates()["srv1/env-trac"]?.outcome == "first seen")

            // 08:05: a backup of the Trac environment (with its repository) is queued.
            clock.advance(by: .seconds(300))
            _ = try await scheduler.look(entries)
            let queued = try await catalog.tasks()
            #expect(queued.map(\.kind) == [.backup] && queued.first?.source == "env-trac")
            let state = try #require(try await catalog.scheduleStates()["srv1/env-trac"])
            #expect(state.lastSlot == Self.start.addingTimeInterval(300) && state.task == queued.first?.id)

            // A second look at the same moment, or a new scheduler after a restart: nothing twice.
            _ = try await scheduler.look(entries)
            _ = try await Scheduler(
                sites: coordinator.sites, catalog: catalog, runs: coordinator.runs,
                submissions: coordinator.submissions,
                wallClock: clock,
                clock: clock, logger: logs.logger
            ).look(entries)
            #expect(try await catalog.tasks().count == 1)

            // 08:10 with that backup still queued: skipped, and said so.
            clock.advance(by: .seconds(300))
            _ = try await scheduler.look(entries)
            #expect(try await catalog.tasks().count == 1)
            #expect(try await catalog.scheduleStates()["srv1/env-trac"]?.outcome == "skipped: still running")
        }
    }

    @Test func theServiceSleepsUntilTheNextTimeAndFiresByItself() async throws {
        try await withTemporaryDirectory("scheduler-service") { dir in
            let clock = ManualClock(start: Self.start)
            let config = CoordinatorConfiguration(
                certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"),
                caCertificate: dir.file("ca.pem"), revocationList: nil, database: dir.file("catalog.sqlite"),
                site: try Self.site("*/5 * * * *"))
            let catalog = try Catalog(path: config.database)
            let coordinator = try Coordinator(
                configuration: config, catalog: catalog, wallClock: clock, clock: clock, logger: LogCapture().logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                let scheduler = coordinator.scheduler
                group.addTask { try await scheduler.run() }
                // It sleeps at most a minute at a time; five of them reach 08:05.
                for _ in 0..<5 {
                    try await clock.waitForSleepers()
                    clock.advance(by: .seconds(60))
                }
                try await clock.waitForSleepers()
                #expect(try await catalog.tasks().map(\.kind) == [.backup])
                group.cancelAll()
            }
        }
    }
}
