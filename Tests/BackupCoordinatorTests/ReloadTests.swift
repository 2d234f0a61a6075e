import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// A reload (SIGHUP) replaces the site for every part at once: queued tasks of what it removed
/// are cancelled `config-removed`, schedules change; keys that need a restart refuse it.
struct ReloadTests {
    static func site(sources: [String], schedule: String) throws -> SiteConfiguration {
        var defaults = SiteConfiguration.ScheduleDefaults()
        defaults.expression = schedule
        return SiteConfiguration(
            nodes: [
                .init(
                    name: "srv1", roles: [.server],
                    sources: Dictionary(
                        uniqueKeysWithValues: sources.map {
                            ($0, SourceDefinition(name: $0, kind: .folder, path: "/srv/\($0)"))
                        }),
                    schedules: Dictionary(
                        uniqueKeysWithValues: try sources.map {
                            ($0, try SourceSchedule(schedule, zone: "UTC", source: "srv1/\($0)"))
                        })),
                .init(name: "vault", roles: [.backup]),
            ], pairings: [.init(server: "srv1", backup: "vault")], schedule: defaults)
    }

    @Test func aReloadCancelsWhatItRemovedChangesSchedulesAndRefusesRestartKeys() async throws {
        try await withTemporaryDirectory("reload") { dir in
            let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
            let config = CoordinatorConfiguration(
                certificate: dir.file("hub.pem"), privateKey: dir.file("hub.key"), caCertificate: dir.file("ca.pem"),
                revocationList: nil, database: dir.file("catalog.sqlite"),
                site: try Self.site(sources: ["conf", "old"], schedule: "0 2 * * *"))
            let coordinator = try Coordinator(
                configuration: config, catalog: try Catalog(path: config.database), wallClock: clock, clock: clock,
                logger: LogCapture().logger)
            let old = try await coordinator.submissions.submit(
                SubmitTaskRequest(kind: .backup, node: "srv1", source: "old"))
            let kept = try await coordinator.submissions.submit(
                SubmitTaskRequest(kind: .backup, node: "srv1", source: "conf"))

            // Restart keys refuse the reload, naming them; nothing changes.
            var moved = config
            moved.port = 9443
            moved.database = dir.file("other.sqlite")
            moved.site = try Self.site(sources: ["conf"], schedule: "30 3 * * *")
            let refusal = try await #require(throws: BackupError.self) { try await coordinator.reload(moved) }
            #expect(refusal.message.contains("coordinator.listen, coordinator.database"), "\(refusal.message)")
            #expect(coordinator.sites.current.node("srv1")?.sources["old"] != nil)

            var next = config
            next.site = try Self.site(sources: ["conf"], schedule: "30 3 * * *")
            let outcome = try await coordinator.reload(next)
            #expect(outcome.cancelled == [old.id])
            let cancelled = try #require(try await coordinator.catalog.task(old.id))
            #expect(cancelled.state == .cancelled && cancelled.lastErrorCode == .configRemoved)
            #expect(cancelled.lastError?.contains("source 'old' of node 'srv1' is no longer in the site") == true)
            #expect(try await coordinator.catalog.task(kept.id)?.state == .queued)
            // Every part reads the new site: the schedules, a submission, a run.
            let shown = Scheduler.list(coordinator.sites.current, states: [:], now: clock.currentDate)
            #expect(shown.map(\.schedule) == ["30 3 * * *"])
            await #expect(throws: BackupError.self) {
                _ = try await coordinator.submissions.submit(
                    SubmitTaskRequest(kind: .backup, node: "srv1", source: "old"))
            }
            #expect(try coordinator.runs.select(node: nil, source: nil).map(\.source) == ["conf"])
        }
    }
}
