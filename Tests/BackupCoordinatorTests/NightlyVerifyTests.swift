import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// Guarantee 7 on the test clock: each night in the verify window every node gets an inventory
/// and a verify of the copies verified longest ago, within `[verify] budget`; a site with more
/// data than one night's budget still has every copy verified within `max_age`.
struct NightlyVerifyTests {
    // 2027-01-15 00:00 UTC.
    static let start = Date(
        timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 86_400))

    static func path(_ i: Int) -> String {
        "srv1/folder/conf/2027/01/\(String(format: "%02d", i + 1))/020000/conf.tar.gz"
    }

    static func copy(_ i: Int, _ state: CopyState, verifiedAt: Date? = nil) -> CopyReport {
        CopyReport(
            path: path(i), origin: "srv1", kind: "folder", source: "conf",
            stamp: "2027/01/\(String(format: "%02d", i + 1))/020000", size: 100,
            sha256: String(repeating: String(format: "%02x", i), count: 32), md5: nil, revision: nil, created: nil,
            state: state, verifiedAt: verifiedAt)
    }

    @Test func twelveCopiesAtThreeANightAreAllVerifiedWithinMaxAgeOldestFirst() async throws {
        try await withTemporaryDirectory("nightly") { dir in
            let clock = ManualClock(start: Self.start)
            var verify = SiteConfiguration.VerifyPolicy()
            verify.budget = 300
            verify.maxAge = 5 * 86_400
            let site = SiteConfiguration(
                nodes: [
                    .init(
                        name: "srv1", roles: [.server],
                        sources: ["conf": SourceDefinition(name: "conf", kind: .folder, path: "/etc/scm")]),
                    .init(name: "vault", roles: [.backup]),
                ], pairings: [.init(server: "srv1", backup: "vault")], verify: verify)
            var schedule = site
            schedule.schedule.expression = "off"
            var config = CoordinatorConfiguration(
                certificate: dir.file("unused.pem"), privateKey: dir.file("unused.key"),
                caCertificate: dir.file("ca.pem"), revocationList: nil, database: dir.file("catalog.sqlite"),
                site: schedule)
            config.leaseSeconds = 3600
            let catalog = try Catalog(path: config.database)
            let coordinator = try Coordinator(
                configuration: config, catalog: catalog, wallClock: clock, clock: clock, logger: LogCapture().logger)
            for name in ["srv1", "vault"] {
                try await catalog.register(
                    name: name, role: .agent,
                    RegisterRequest(
                        version: "1.0.0", storePath: "/s", diskTotal: 1 << 40, diskFree: 1 << 40, kinds: []),
                    now: Self.start)
            }
            // Twelve artifacts made on srv1, listed (never verified) on vault.
            let all = (0..<12).map { Self.copy($0, .intact, verifiedAt: Self.start) }
            try await catalog.record(
                ArtifactReport(complete: true, copies: all), node: "srv1",
                authority: .originBackup(sources: ["conf"]), now: Self.start)
            try await catalog.record(
                ArtifactReport(complete: true, copies: (0..<12).map { Self.copy($0, .unverified) }), node: "vault",
                authority: .inventory, now: Self.start)
            let scheduler = coordinator.scheduler
            let entries = Scheduler.entries(config.site)
            var verifiedPerNight: [[String]] = []
            for night in 0..<10 {
                // 01:00 on night `night`: the window opens.
                clock.advance(to: Self.start.addingTimeInterval(Double(night) * 86_400 + 3600 + 30))
                _ = try await scheduler.look(entries)
                _ = try await scheduler.look(entries)  // A second look the same night queues nothing.
                var named: [String] = []
                for node in ["srv1", "vault"] {
                    while let task = try await coordinator.queue.lease(for: node, waitSeconds: 0) {
                        let now = clock.currentDate
                        let report: ArtifactReport
                        switch task.kind {
                        case .inventory:
                            let copies = (0..<12).map { i in Self.copy(i, node == "vault" ? .unverified : .intact) }
                            report = ArtifactReport(complete: true, copies: copies)
                        case .verify:
                            let paths = task.artifacts ?? []
                            if node == "vault" { named = paths }
                            report = ArtifactReport(
                                complete: false,
                                copies: (0..<12).filter { paths.contains(Self.path($0)) }.map {
                                    Self.copy($0, .intact, verifiedAt: now)
                                })
                        default:
                            Issue.record("unexpected \(task.kind) task")
                            continue
                        }
                        _ = try await coordinator.results.accept(
                            task.id, from: node,
                            ResultRequest(fencingToken: task.fencingToken, error: nil, artifacts: report))
                    }
                }
                verifiedPerNight.append(named)
                // From the fourth night on, every copy on vault counts as verified (within 5 d).
                if night >= 3 {
                    let now = clock.currentDate
                    let copies = try await catalog.artifacts(node: "vault").compactMap {
                        $0.copies.first { $0.node == "vault" }
                    }
                    #expect(copies.count == 12)
                    #expect(
                        copies.allSatisfy { Standing.isVerified($0, now: now, maxAge: verify.maxAge) },
                        "night \(night): \(copies.filter { !Standing.isVerified($0, now: now, maxAge: verify.maxAge) }.map(\.path))"
                    )
                }
            }
            // Three a night (the budget), never the same copy twice before all were done.
            #expect(verifiedPerNight.allSatisfy { $0.count == 3 }, "\(verifiedPerNight.map(\.count))")
            #expect(Set(verifiedPerNight.prefix(4).flatMap { $0 }).count == 12)
            // The nightly tasks: an inventory and a verify for each node each night.
            let tasks = try await catalog.tasks(TaskListQuery(limit: 1000))
            #expect(tasks.filter { $0.kind == .inventory }.count == 20)
            #expect(tasks.filter { $0.kind == .verify }.count == 20)
            #expect(try await catalog.scheduleStates()["vault/(nightly)"]?.outcome.contains("verify task") == true)
        }
    }

    @Test func theWindowIsReadInTheSiteZoneAcrossMidnight() throws {
        var policy = SiteConfiguration.VerifyPolicy()
        policy.windowStart = 23 * 60
        policy.windowEnd = 2 * 60
        let zone = try #require(TimeZone(identifier: "Asia/Shanghai"))
        // 2027-01-15 16:30 UTC is 00:30 in Shanghai on the 16th: inside the window that began
        // at 23:00 on the 15th (15:00 UTC).
        let now = Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 86_400))
            .addingTimeInterval(16.5 * 3600)
        let window = Scheduler.window(before: now, policy: policy, zone: zone)
        #expect(window.start == now.addingTimeInterval(-1.5 * 3600))
        #expect(window.end == window.start.addingTimeInterval(3 * 3600))
    }
}
