import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs on a real site (issue 12): a coordinator and three agents as processes, a server `srv1`,
/// a backup node `vault` it pushes to and a backup node `vault2` that pulls from it. A run backs
/// up, sends what it made along both pairings and ends when both receivers verified it; one
/// failing source does not stop the other; the coordinator killed mid-run finishes the run after
/// its restart with nothing backed up or sent twice.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct RunProcessTests {
    struct Run: Decodable {
        struct Source: Decodable {
            struct Copy: Decodable {
                var node: String
                var path: String
                var state: String
                var task: Int64?
                var reason: String?
            }
            var node: String
            var source: String
            var state: String
            var backupTask: Int64?
            var artifacts: [String]
            var copies: [Copy]
            var reason: String?
        }
        var id: Int64
        var state: String
        var sources: [Source]
    }

    static func site(
        _ dir: TemporaryDirectory, sources: [(name: String, kind: String, path: String)], pullRate: String,
        coordinatorExtra: String = "", sourceExtra: [String: String] = [:]
    ) throws -> ProcessSite {
        let site = try ProcessSite(
            dir,
            nodes: [
                .init("srv1", sources: sources, sourceExtra: sourceExtra), .init("vault", roles: ["backup"]),
                .init("vault2", roles: ["backup"]),
            ], pairings: [("srv1", "vault"), ("srv1", "vault2")], leaseSeconds: 6, transfers: true,
            coordinatorExtra: coordinatorExtra,
            pairingExtra: ["vault2": "direction = \"pull\"\nbandwidth_limit = \"\(pullRate)\""])
        try site.startCoordinator()
        for name in ["srv1", "vault", "vault2"] { try site.startAgent(name, dataPort: true) }
        try site.waitUntilOnline(3)
        return site
    }

    /// A folder with `bytes` of incompressible data.
    static func folder(_ dir: TemporaryDirectory, _ name: String, bytes: Int) throws -> String {
        let path = dir.file(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try data.write(to: URL(fileURLWithPath: path + "/data.bin"))
        try "config of \(name)\n".write(toFile: path + "/settings.conf", atomically: true, encoding: .utf8)
        return path
    }

    static func bytes(_ site: ProcessSite, _ node: String, _ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: site.dir.file("store-\(node)/\(path)")))
    }

    @Test func aRunCopiesToAPushAndAPullNodeAndAFailingSourceDoesNotStopTheOther() async throws {
        try await blocking {
            try withTemporaryDirectory("run") { dir in
                let conf = try Self.folder(dir, "conf", bytes: 64 << 10)
                let site = try Self.site(
                    dir,
                    sources: [
                        ("conf", "folder", conf), ("broken", "folder", dir.file("no-such-folder")),
                        ("outside", "folder", "/srv/outside-the-roots"),
                    ], pullRate: "50 MiB/s",
                    // One of vault's two copies lost is half of them: believed, not held.
                    coordinatorExtra: "inventory_missing_max = 1")
                // Before any run: the source its agent would refuse is named, from what it reported.
                let before = try site.admin(["status"])
                #expect(before.status == 3)
                #expect(
                    before.stdout.contains(
                        "REFUSED by its agent: '/srv/outside-the-roots' lies outside srv1's source_roots"),
                    "\(before.stdout)")
                // Both sources: conf reaches both vaults, broken fails; exit 3 naming it.
                let both = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(both.status == 3, "\(both.stdout)\(both.stderr)")
                #expect(both.stdout.contains("srv1/broken  failed"), "\(both.stdout)")
                #expect(both.stdout.contains("srv1/conf  succeeded  2/2 copies"), "\(both.stdout)")
                let runs = try site.json([Run].self, ["runs"])
                let first = try #require(runs.first)
                #expect(first.state == "partial")
                let good = try #require(first.sources.first { $0.source == "conf" })
                let path = try #require(good.artifacts.first)
                #expect(good.copies.map(\.node).sorted() == ["vault", "vault2"])
                #expect(good.copies.allSatisfy { $0.state == "verified" })
                let original = try Self.bytes(site, "srv1", path)
                #expect(try Self.bytes(site, "vault", path) == original, "pushed copy is byte-identical")
                #expect(try Self.bytes(site, "vault2", path) == original, "pulled copy is byte-identical")
                let broken = try #require(first.sources.first { $0.source == "broken" })
                #expect(broken.state == "failed" && broken.reason?.contains("no-such-folder") == true)

                // Only the good source: exit 0, and `runs show` tells the same story.
                let one = try site.admin(["run", "--source", "conf", "--wait", "--poll-seconds", "0.5"])
                #expect(one.status == 0, "\(one.stdout)\(one.stderr)")
                let second = try #require(try site.json([Run].self, ["runs", "--limit", "1"]).first)
                #expect(second.state == "succeeded" && second.sources.map(\.source) == ["conf"])
                let shown = try site.json(Run.self, ["runs", "show", "\(second.id)"])
                #expect(shown.sources.first?.copies.count == 2)
                // A run of nothing is refused, naming what matched nothing.
                let none = try site.admin(["run", "--source", "nowhere"])
                #expect(none.status == 1 && none.stderr.contains("source 'nowhere'"), "\(none.stderr)")
                let unknown = try site.admin(["runs", "show", "999"])
                #expect(unknown.status == 1 && unknown.stderr.contains("no run 999"), "\(unknown.stderr)")

                // The site-wide views agree with what the stores hold.
                struct Status: Decodable {
                    struct Source: Decodable {
                        struct Copy: Decodable {
                            var node: String
                            var verified: Bool
                        }
                        var source: String
                        var late: Bool
                        var newest: Newest?
                        var copies: [Copy]
                        var refusal: String?
                    }
                    struct Newest: Decodable { var path: String }
                    var sources: [Source]
                }
                // Exit 3: broken and outside have no artifact.
                let shownStatus = try site.admin(["status", "--json"])
                #expect(shownStatus.status == 3)
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let status = try decoder.decode(Status.self, from: Data(shownStatus.stdout.utf8))
                let confStatus = try #require(status.sources.first { $0.source == "conf" })
                #expect(
                    confStatus.copies.map(\.node) == ["vault", "vault2"] && confStatus.copies.allSatisfy(\.verified))
                #expect(confStatus.newest?.path.hasSuffix(".tar.gz") == true && !confStatus.late)
                #expect(status.sources.first { $0.source == "outside" }?.refusal != nil)
                let check = try site.admin(["check"])
                #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
                #expect(check.stdout.contains("srv1 -> vault2  conf  2/2 held"), "\(check.stdout)")
                let df = try site.admin(["df"])
                #expect(df.status == 0 && df.stdout.contains("vault2 ") && df.stdout.contains("free"), "\(df.stdout)")
                let ls = try site.admin(["ls", "--node", "vault2"])
                #expect(
                    ls.stdout.contains("srv1/folder/conf  2 copies") && ls.stdout.contains("intact"), "\(ls.stdout)")
                let du = try site.admin(["du", "--node", "vault"])
                #expect(du.status == 0 && du.stdout.contains("2 copies  srv1/folder/conf"), "\(du.stdout)")
                // A copy lost on vault: the inventory finds it missing, and it is sent again
                // along its pairing by itself; check then finds nothing missing.
                try FileManager.default.removeItem(atPath: site.dir.file("store-vault/\(path)"))
                try FileManager.default.removeItem(atPath: site.dir.file("store-vault/\(path).dna"))
                try ProcessSite.ok(try site.admin(["tasks", "submit", "--kind", "inventory", "--node", "vault"]))
                try site.waitUntil("the lost copy is back", seconds: 60) {
                    FileManager.default.fileExists(atPath: site.dir.file("store-vault/\(path)"))
                }
                try site.settle()
                let after = try site.admin(["check"])
                #expect(after.status == 0, "\(after.stdout)")
                // `transfer --at` sends only that day's artifacts (here: held already, skipped).
                let day = path.split(separator: "/")[3...5].joined(separator: "-")
                let bad = try site.admin(["transfer", "--from", "srv1", "--to", "vault", "--at", "yesterday"])
                #expect(bad.status == 1 && bad.stderr.contains("at='yesterday'"), "\(bad.stderr)")
                let resent = try site.admin(["transfer", "--from", "srv1", "--to", "vault", "--at", day])
                #expect(resent.stdout.contains("0 transfers queued, 2 skipped"), "\(resent.stdout)\(resent.stderr)")
                let otherDay = try site.admin(["transfer", "--from", "srv1", "--to", "vault", "--at", "2001-01-01"])
                #expect(otherDay.stdout.contains("0 transfers queued, 0 skipped"), "\(otherDay.stdout)")
                #expect(try Self.bytes(site, "vault", path) == original)
            }
        }
    }

    @Test func theCoordinatorKilledMidRunFinishesItAfterARestartWithNothingDoneTwice() async throws {
        try await blocking {
            try withTemporaryDirectory("run-kill") { dir in
                // 6 MiB pulled at 1 MiB/s: the hub is killed while vault2 pulls.
                let data = try Self.folder(dir, "data", bytes: 6 << 20)
                let site = try Self.site(dir, sources: [("data", "folder", data)], pullRate: "1 MiB/s")
                let started = try site.admin(["run", "--json"])
                #expect(started.status == 0, "\(started.stderr)")
                try site.waitUntil("a transfer runs", seconds: 90) {
                    let r = try site.admin(["tasks", "list", "--state", "leased", "--json"])
                    return r.stdout.contains("\"transfer\"")
                }
                site.stop("hub", SIGKILL)
                try site.startCoordinator()
                var run: Run?
                try site.waitUntil("the run ended", seconds: 150) {
                    run = try site.json([Run].self, ["runs"]).first
                    return run.map { $0.state != "running" } ?? false
                }
                let ended = try #require(run)
                #expect(ended.state == "succeeded", "\(ended)")
                let tasks = try site.tasks()
                #expect(tasks.filter { $0.kind == "backup" }.count == 1, "backed up once")
                #expect(tasks.filter { $0.kind == "transfer" }.count == 2, "one transfer per pairing")
                let path = try #require(ended.sources.first?.artifacts.first)
                let original = try Self.bytes(site, "srv1", path)
                #expect(try Self.bytes(site, "vault", path) == original)
                #expect(try Self.bytes(site, "vault2", path) == original)
            }
        }
    }

    @Test func aScheduledSourceRunsByItselfAndBothBackupNodesHoldByteIdenticalCopies() async throws {
        try await blocking {
            try withTemporaryDirectory("run-scheduled") { dir in
                let conf = try Self.folder(dir, "conf", bytes: 32 << 10)
                let site = try Self.site(
                    dir, sources: [("conf", "folder", conf)], pullRate: "50 MiB/s",
                    sourceExtra: ["conf": "schedule = \"* * * * *\""])
                var run: Run?
                try site.waitUntil("a scheduled run succeeded", seconds: 130) {
                    run = try site.json([Run].self, ["runs"]).last
                    return run?.state == "succeeded"
                }
                let done = try #require(run)
                let path = try #require(done.sources.first?.artifacts.first)
                let original = try Self.bytes(site, "srv1", path)
                #expect(try Self.bytes(site, "vault", path) == original)
                #expect(try Self.bytes(site, "vault2", path) == original)
                struct Trigger: Decodable { var trigger: String }
                #expect(try site.json([Trigger].self, ["runs"]).last?.trigger == "schedule")
            }
        }
    }

    @Test func aHungToolTimesOutAtMaxDurationAndTheOtherSourceStillReachesItsCopies() async throws {
        try await blocking {
            try withTemporaryDirectory("run-hung") { dir in
                let conf = try Self.folder(dir, "conf", bytes: 4 << 10)
                let slowSource = try Self.folder(dir, "slow", bytes: 4 << 10)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("conf", "folder", conf), ("slow", "folder", slowSource)],
                            sourceExtra: ["slow": "pre_backup = \"slow\""]),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault")], leaseSeconds: 6, transfers: true)
                site.schedule = "default = \"off\"\n\n[runs]\nbackup_max_duration = \"5s\""
                // A pre-backup step that hangs for two minutes.
                let (started, slow) = try site.slowStep(seconds: 120)
                try site.startCoordinator()
                try site.startAgent("srv1", dataPort: true, extra: slow)
                try site.startAgent("vault", dataPort: true)
                try site.waitUntilOnline(2)
                let t0 = Date()
                let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(run.status == 3, "\(run.stdout)\(run.stderr)")
                // Ended by the time-out, not by the step's two minutes.
                #expect(Date().timeIntervalSince(t0) < 60, "the run took \(Date().timeIntervalSince(t0)) s")
                #expect(run.stdout.contains("srv1/conf  succeeded  1/1 copies"), "\(run.stdout)")
                #expect(run.stdout.contains("srv1/slow  failed"), "\(run.stdout)")
                #expect(run.stdout.contains("max_duration"), "\(run.stdout)")
                #expect(FileManager.default.fileExists(atPath: started))
                let timedOut = try site.tasks().first { $0.kind == "backup" && $0.state == "failed" }
                #expect(timedOut?.lastErrorCode == "timeout", "\(String(describing: timedOut))")
                // The hung step is stopped with its task, not left running for two minutes.
                try site.waitUntil("the hung step is gone", seconds: 15) {
                    let pids = try FileManager.default.contentsOfDirectory(atPath: "/proc")
                    return !pids.contains { pid in
                        // A process that ended since the listing has no cmdline to read.
                        guard Int(pid) != nil,
                            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
                        else { return false }
                        return String(decoding: cmdline, as: UTF8.self).contains(dir.file("slow-step"))
                    }
                }
            }
        }
    }

    @Test func aNodeWithMaxTasksTwoRunsTwoBackupsAtOnce() async throws {
        try await blocking {
            try withTemporaryDirectory("run-max-tasks") { dir in
                let one = try Self.folder(dir, "one", bytes: 4 << 10)
                let two = try Self.folder(dir, "two", bytes: 4 << 10)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("one", "folder", one), ("two", "folder", two)],
                            sourceExtra: ["one": "pre_backup = \"slow\"", "two": "pre_backup = \"slow\""],
                            extra: "max_tasks = 2")
                    ])
                let (_, slow) = try site.slowStep(seconds: 4)
                try site.startCoordinator()
                try site.startAgent("srv1", extra: slow)
                try site.waitUntil("srv1 online") { try site.admin(["nodes"]).stdout.contains("online") }
                try ProcessSite.ok(try site.admin(["run"]))
                try site.waitUntil("two backups run at once", seconds: 30) {
                    try site.json([ProcessSite.TaskView].self, ["tasks", "list", "--state", "leased"]).count == 2
                }
                var run: Run?
                try site.waitUntil("the run ended", seconds: 60) {
                    run = try site.json([Run].self, ["runs"]).first
                    return run?.state != "running"
                }
                #expect(run?.state == "succeeded", "\(String(describing: run))")
            }
        }
    }
}
