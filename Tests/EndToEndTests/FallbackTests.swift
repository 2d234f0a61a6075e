import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Agents keep going without the hub (issue 14, item 5): the hub is killed for two scheduled
/// slots; the server's agent backs its source up on its own after `fallback_grace`; when the hub
/// is back, the catalog records both artifacts as the origin's, its catch-up runs nothing a
/// second time, and the backup node receives both.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct FallbackTests {
    struct Task: Decodable {
        var id: Int64
        var kind: String
        var node: String
        var state: String
        var lastError: String?
    }

    struct Schedule: Decodable {
        var source: String
        var lastOutcome: String?
    }

    /// The artifacts of `source` in `store`, relative.
    static func artifacts(_ store: String, _ folder: String) -> [String] {
        let root = store + "/" + folder
        return (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix(".tar.gz")
        }.sorted()
    }

    @Test func theHubAwayForTwoSlotsTheAgentBacksUpAndTheSiteCatchesUpWithNothingRunTwice() async throws {
        try await blocking {
            try withTemporaryDirectory("fallback") { dir in
                var passed = false
                let conf = dir.file("conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                try "v1\n".write(toFile: conf + "/app.conf", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("conf", "folder", conf)],
                            sourceExtra: ["conf": "schedule = \"* * * * *\""]),
                        .init(
                            "srv2", sources: [("etc", "folder", conf)], sourceExtra: ["etc": "schedule = \"* * * * *\""]
                        ),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault"), ("srv2", "vault")], transfers: true)
                site.schedule = "default = \"off\"\ntime_zone = \"UTC\""
                defer {
                    if !passed { site.printLogs(["coordinator.log", "agent-srv1.log"], last: 10000) }
                }
                try site.startCoordinator()
                try site.startAgent("srv1", dataPort: true, extra: "fallback_grace = 3")
                // srv2's disk is "nearly full": it must not fill it further on its own.
                try site.startAgent("srv2", dataPort: true, extra: "fallback_grace = 3\nfallback_min_free = 99")
                try site.startAgent("vault", dataPort: true)
                try site.waitUntilOnline(3)
                let plan = dir.file("store-srv1/.scm-backup-fallback/plan.json")
                try site.waitUntil("srv1 and srv2 keep the hub's plan", seconds: 30) {
                    FileManager.default.fileExists(atPath: plan)
                        && FileManager.default.fileExists(atPath: dir.file("store-srv2/.scm-backup-fallback/plan.json"))
                }
                // Between slots (so no backup of the hub's own is under way), the hub dies.
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = TimeZone(identifier: "UTC")!
                while calendar.component(.second, from: Date()) > 50 { usleep(500_000) }
                try site.settle()
                let before = Self.artifacts(dir.file("store-srv1"), "srv1/folder/conf")
                let srv2Artifacts = Self.artifacts(dir.file("store-srv2"), "srv2/folder/etc").count
                let lastTaskBefore =
                    try site.json([Task].self, ["tasks", "list", "--limit", "1000"]).map(\.id).max() ?? 0
                site.stop("hub", SIGKILL)
                let hold = try site.holdPort()
                let killed = Date()
                let first = calendar.nextDate(
                    after: killed, matching: DateComponents(second: 0), matchingPolicy: .strict)!
                let second = first.addingTimeInterval(60)

                // Two slots pass; the agent backs up after each, on its own.
                try site.waitUntil("srv1's first own backup", seconds: 90) {
                    Self.artifacts(dir.file("store-srv1"), "srv1/folder/conf").count == before.count + 1
                }
                try "v2\n".write(toFile: conf + "/app.conf", atomically: true, encoding: .utf8)
                try site.waitUntil("srv1's second own backup", seconds: 90) {
                    Self.artifacts(dir.file("store-srv1"), "srv1/folder/conf").count == before.count + 2
                }
                let own = Self.artifacts(dir.file("store-srv1"), "srv1/folder/conf").filter { !before.contains($0) }
                let full = try String(contentsOfFile: dir.file("agent-srv2.log"), encoding: .utf8)
                #expect(
                    full.contains("no backup on its own: the disk is nearly full") && full.contains("fallback_min_free")
                        && full.contains(dir.file("store-srv2")), "srv2 names why it made nothing")
                #expect(Self.artifacts(dir.file("store-srv2"), "srv2/folder/etc").count == srv2Artifacts)
                let log = try String(contentsOfFile: dir.file("agent-srv1.log"), encoding: .utf8)
                #expect(log.contains("backing up on its own"), "the agent says what it does")

                // The hub comes back with the slots it missed in its schedule (and none after
                // them, so that what follows is only the catch-up).
                let minutes = [first, second].map { calendar.component(.minute, from: $0) }
                site.nodes[0].sourceExtra = ["conf": "schedule = \"\(minutes[0]),\(minutes[1]) * * * *\""]
                site.nodes[1].sourceExtra = ["etc": "schedule = \"\(minutes[0]),\(minutes[1]) * * * *\""]
                close(hold)
                try site.startCoordinator()
                struct Artifact: Decodable {
                    struct Copy: Decodable {
                        var node: String
                        var state: String
                    }
                    var source: String
                    var stamp: String
                    var copies: [Copy]
                }
                var listed: [Artifact] = []
                try site.waitUntil("the catalog and vault caught up", seconds: 90) {
                    listed = try site.json([Artifact].self, ["artifacts", "--source", "conf"])
                    return listed.count == before.count + 2
                        && listed.allSatisfy { a in
                            Set(a.copies.filter { $0.state == "intact" }.map(\.node)) == ["srv1", "vault"]
                        }
                }
                try site.settle()
                // Nothing ran twice: no backup after the return, and no other artifact anywhere.
                let tasks = try site.json([Task].self, ["tasks", "list", "--limit", "1000"])
                let backups = tasks.filter { $0.kind == "backup" && $0.id > lastTaskBefore && $0.node == "srv1" }
                #expect(backups.allSatisfy { $0.state == "cancelled" }, "no backup ran after the return: \(backups)")
                // srv2 made nothing on its own: the hub's catch-up backs it up.
                #expect(
                    tasks.contains {
                        $0.kind == "backup" && $0.node == "srv2" && $0.id > lastTaskBefore && $0.state == "succeeded"
                    },
                    "\(tasks)")
                #expect(Self.artifacts(dir.file("store-srv1"), "srv1/folder/conf").count == before.count + 2)
                let received = Self.artifacts(dir.file("store-vault"), "srv1/folder/conf")
                #expect(Set(own).isSubset(of: Set(received)), "vault holds \(received), srv1 made \(own)")
                let schedules = try site.json([Schedule].self, ["schedules"])
                let outcome = schedules.first { $0.source == "conf" }?.lastOutcome ?? ""
                #expect(outcome.contains("made by the agent on its own"), "\(outcome)")
                FileHandle.standardError.write(Data("fallback test: conf's last slot: \(outcome)\n".utf8))
                let hubLog = try String(contentsOfFile: dir.file("coordinator.log"), encoding: .utf8)
                #expect(hubLog.components(separatedBy: "an agent's own backup recorded").count - 1 == 2)
                let pending = try FileManager.default.contentsOfDirectory(
                    atPath: dir.file("store-srv1/.scm-backup-fallback")
                ).filter { $0.hasPrefix("report-") }
                #expect(pending.isEmpty, "every report delivered: \(pending)")
                passed = true
            }
        }
    }
}
