import BackupTesting
import Foundation
import Testing

/// The coordinator runs backups by itself (issue 12, first part): with `schedule = "* * * * *"`
/// on a source and nobody queueing anything, a real site backs it up within a minute, and the
/// coordinator restarted between two slots fires neither again.
@Suite(.timeLimit(.minutes(4)))
struct ScheduledBackupTests {
    @Test func aScheduledSourceIsBackedUpWithNobodyAsking() async throws {
        try await blocking {
            try withTemporaryDirectory("scheduled") { dir in
                let conf = dir.file("conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                try "scheduled\n".write(toFile: conf + "/state.txt", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("conf", "folder", conf)],
                            sourceExtra: ["conf": "schedule = \"* * * * *\""])
                    ])
                try site.startCoordinator()
                try site.startAgent("srv1")
                var first: [ProcessSite.TaskView] = []
                try site.waitUntil("a scheduled backup succeeded", seconds: 100) {
                    first = try site.tasks()
                    return first.contains { $0.kind == "backup" && $0.state == "succeeded" }
                }
                // `schedules` shows what the slot did and the next time, a minute on at most.
                struct Schedule: Decodable {
                    var source: String
                    var schedule: String
                    var nextFire: Date?
                    var lastOutcome: String?
                }
                let schedules = try site.json([Schedule].self, ["schedules"])
                let shown = try #require(schedules.first { $0.source == "conf" })
                #expect(shown.schedule == "* * * * *")
                #expect(shown.lastOutcome?.hasPrefix("queued task") == true, "\(shown.lastOutcome ?? "-")")
                let nextFire = try #require(shown.nextFire)
                let ahead = nextFire.timeIntervalSinceNow
                #expect(ahead > -5 && ahead <= 61, "next in \(ahead) s")
                // Restarted between two slots (from 5 to 40 s into a minute, waiting for the next
                // one if need be): the slot it fired is remembered, so nothing new is queued.
                let second = { Calendar(identifier: .gregorian).component(.second, from: Date()) }
                if !(5..<40).contains(second()) {
                    Thread.sleep(forTimeInterval: Double((65 - second()) % 60))
                }
                let fired = try site.settle(seconds: 60).count
                site.stop("hub")
                try site.startCoordinator()
                try site.waitUntil("srv1 back online") { try site.admin(["nodes"]).stdout.contains("online") }
                #expect(second() < 58, "the restart ended before the next slot")
                #expect(try site.tasks().count == fired, "no slot fired twice across the restart")
                let stores =
                    FileManager.default.enumerator(atPath: dir.file("store-srv1/srv1"))?
                    .compactMap { $0 as? String }.filter { $0.hasSuffix(".tar.gz") } ?? []
                #expect(!stores.isEmpty)
            }
        }
    }
}
