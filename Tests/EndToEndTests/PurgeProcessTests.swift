import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The purge stage on a real site (issue 13): a coordinator and three agents as processes, a
/// server `srv1` pushing to `vault` and `vault2` (which keeps longer). Run after run ("nights")
/// each node ends with exactly the copies its retention keeps; `vault2` kept offline holds the
/// origin's purge back exactly as far as `copies` requires, and `purge --node` says so; the
/// site's pause switch and the node's own stop every deletion; what goes waits in the trash; an
/// agent killed mid-purge finishes it after its restart with nothing half-moved.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct PurgeProcessTests {
    struct Run: Decodable {
        struct Source: Decodable { var artifacts: [String] }
        var id: Int64
        var state: String
        var sources: [Source]
    }

    struct Plan: Decodable {
        struct Entry: Decodable {
            var path: String
            var delete: Bool
            var reasons: [String]
        }
        var paused: String?
        var heldBackBy: [String]
        var copies: [Entry]
        var quarantine: [Entry]?
        var task: Int64?
    }

    /// The store-relative paths `node`'s store holds, sorted.
    static func held(_ site: ProcessSite, _ node: String) throws -> [String] {
        let store = Store(root: site.dir.file("store-\(node)"))
        return try store.scan().artifacts.map { String($0.path.dropFirst(store.root.count + 1)) }.sorted()
    }

    /// One night: a run, waited for, then its purge stage; returns the artifact it made.
    static func night(_ site: ProcessSite, expect state: Int32 = 0) throws -> String {
        let run = try site.admin(["run", "--wait", "--poll-seconds", "0.3"])
        #expect(run.status == state, "\(run.stdout)\(run.stderr)")
        try site.settle()
        let last = try #require(try site.json([Run].self, ["runs", "--limit", "1"]).first)
        return try #require(last.sources.first?.artifacts.first)
    }

    @Test func aWeekOfNightsEndsWithThePolicysCopiesAndAnOfflineNodeHoldsThePurgeBack() async throws {
        try await blocking {
            try withTemporaryDirectory("purge-site") { dir in
                let conf = dir.file("conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                try "setting = 1\n".write(toFile: conf + "/a.conf", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: [("conf", "folder", conf)]), .init("vault", roles: ["backup"]),
                        .init("vault2", roles: ["backup"], extra: "retention = { keep_last = 3 }"),
                    ], pairings: [("srv1", "vault"), ("srv1", "vault2")], leaseSeconds: 6, transfers: true)
                site.schedule =
                    "default = \"off\"\n\n[retention]\nkeep_last = 2\n\n[runs]\noffline_wait = \"3s\"\nmax_attempts = 1"
                try site.startCoordinator()
                let floors = "floor_min_age = \"0s\""
                for name in ["srv1", "vault", "vault2"] { try site.startAgent(name, dataPort: true, extra: floors) }
                try site.waitUntilOnline(3)

                // Four nights: srv1 and vault keep the newest 2, vault2 the newest 3.
                var made: [String] = []
                for night in 1...4 {
                    try "setting = \(night)\n".write(toFile: conf + "/a.conf", atomically: true, encoding: .utf8)
                    made.append(try Self.night(site))
                }
                #expect(try Self.held(site, "srv1") == made[2...].sorted())
                #expect(try Self.held(site, "vault") == made[2...].sorted())
                #expect(try Self.held(site, "vault2") == made[1...].sorted())
                // What went waits in the trash of each node.
                let trash = try Store(root: dir.file("store-srv1")).trashEntries().map(\.path).sorted()
                #expect(trash == made[..<2].sorted())
                let listed = try Command.scmBackup(["trash", "--store", dir.file("store-srv1")])
                #expect(listed.stdout.contains("2 copies in the trash"), "\(listed.stdout)")
                // Through the hub: listed, one restored (the catalog lists it again), the rest freed.
                let remote = try site.admin(["trash", "--node", "srv1"])
                #expect(
                    remote.status == 0 && remote.stdout.contains("2 copies in the trash"),
                    "\(remote.stdout)\(remote.stderr)")
                let back = try site.admin(["trash", "--node", "srv1", "--restore", made[0]])
                #expect(back.status == 0 && back.stdout.contains("restored \(made[0])"), "\(back.stdout)\(back.stderr)")
                #expect(try Self.held(site, "srv1") == [made[0]] + made[2...].sorted())
                let listedAgain = try site.json(Plan.self, ["purge", "--node", "srv1"])
                #expect(listedAgain.copies.contains { $0.path == made[0] && $0.delete })
                let freed = try site.admin(["trash", "--node", "srv1", "--empty"])
                #expect(freed.status == 0 && freed.stdout.contains("freed 1 copies"), "\(freed.stdout)\(freed.stderr)")
                #expect(try Store(root: dir.file("store-srv1")).trashEntries().isEmpty)
                let events = try site.admin(["events"])
                #expect(events.stdout.contains("POST /v1/trash"), "audited")
                // The next stage purges the restored copy again.
                #expect(try site.json(Plan.self, ["purge", "--node", "srv1", "--apply"]).task != nil)
                try site.settle()
                // The catalog agrees: the purged copies are gone from it.
                let plan = try site.json(Plan.self, ["purge", "--node", "srv1"])
                #expect(plan.copies.map(\.path).sorted() == made[2...].sorted())
                #expect(plan.copies.allSatisfy { !$0.delete } && plan.heldBackBy.isEmpty)

                // vault2 goes offline for three nights: its copies fail after offline_wait, so
                // nothing made meanwhile has 2 verified copies, and none of it is purged.
                site.stop("vault2")
                for _ in 5...7 { made.append(try Self.night(site, expect: 3)) }
                // srv1 keeps the last 2 (6, 7) by policy, and 5 because vault2 lacks it (the one
                // the policy would drop: "of 1"); 3 and 4 were replicated before vault2 left, and go.
                #expect(try Self.held(site, "srv1") == made[4...].sorted())
                #expect(try Self.held(site, "vault") == made[4...].sorted())
                let held = try site.admin(["purge", "--node", "srv1"])
                #expect(held.status == 0, "\(held.stderr)")
                #expect(held.stdout.contains("held back by vault2: lacks fresh verified copies of 1"), "\(held.stdout)")
                #expect(
                    held.stdout.contains("only 1 of 2 verified copies on backup nodes")
                        && held.stdout.contains("vault2 (no copy)"),
                    "\(held.stdout)")

                // status names it too, from each node's last stage.
                let status = try site.admin(["status"]).stdout
                #expect(status.contains("PURGE") && status.contains("held back by vault2"), "\(status)")

                // The site-wide switch: a night orders no purge; the dry run says why.
                let pause = try site.admin(["purge", "pause", "--reason", "disk swap on vault"])
                #expect(pause.status == 0 && pause.stdout.contains("purging paused site-wide"), "\(pause.stderr)")
                let before = try site.tasks().filter { $0.kind == "purge" }.count
                try site.startAgent("vault2", dataPort: true, extra: floors)
                try site.waitUntilOnline(3)
                made.append(try Self.night(site))
                #expect(try site.tasks().filter { $0.kind == "purge" }.count == before)
                let paused = try site.json(Plan.self, ["purge", "--node", "srv1"])
                #expect(paused.paused?.contains("disk swap on vault") == true)
                #expect(try site.admin(["status"]).stdout.contains("PAUSED site-wide by root"))
                #expect(try site.admin(["purge", "resume"]).status == 0)
                // vault2 back: the nights it missed are not sent by themselves (their copies
                // failed); the operator sends what it lacks, and then they count.
                let sent = try site.admin(["transfer", "--from", "srv1", "--to", "vault2"])
                #expect(sent.status == 0, "\(sent.stderr)")
                try site.settle()
                #expect(try Self.held(site, "vault2").filter { made[4..<7].contains($0) }.count == 3)

                // The node's own switch: vault refuses the order whatever the hub says.
                let stopFile = dir.file("store-vault/.scm-backup-purge-paused")
                try Data().write(to: URL(fileURLWithPath: stopFile))
                let refused = try site.json(Plan.self, ["purge", "--node", "vault", "--apply"])
                let task = try #require(refused.task, "a purge is ordered on vault")
                try site.settle()
                let failed = try #require(try site.tasks().first { $0.id == task })
                #expect(
                    failed.state == "failed" && failed.lastError?.contains("Purging is paused on node 'vault'") == true)
                #expect(try Self.held(site, "vault") == made[4...].sorted(), "nothing deleted")
                try FileManager.default.removeItem(atPath: stopFile)
                let applied = try site.json(Plan.self, ["purge", "--node", "vault", "--apply"])
                #expect(applied.task != nil)
                try site.settle()
                #expect(try Self.held(site, "vault") == made[6...].sorted())

                // A mutant on vault: set aside by a verify, repaired from srv1, listed by the next
                // inventory; the plan keeps it for quarantine_days after it was set aside.
                let victim = dir.file("store-vault/" + made.last!)
                var rotten = try Data(contentsOf: URL(fileURLWithPath: victim))
                rotten[rotten.count / 2] ^= 0xff
                try rotten.write(to: URL(fileURLWithPath: victim))
                try ProcessSite.ok(try site.admin(["verify", "--node", "vault"]))
                try site.settle()
                try ProcessSite.ok(try site.admin(["tasks", "submit", "--kind", "inventory", "--node", "vault"]))
                try site.settle()
                let quarantined = try site.json(Plan.self, ["purge", "--node", "vault"])
                let entry = try #require(quarantined.quarantine?.first, "the quarantined mutant is listed")
                #expect(entry.path == ".quarantine/" + made.last! && !entry.delete)
                #expect(entry.reasons.first?.contains("repaired; kept for quarantine_days (30)") == true, "\(entry)")
                let shown = try site.admin(["purge", "--node", "vault"])
                #expect(shown.stdout.contains("keep   .quarantine/" + made.last!), "\(shown.stdout)")
                // Its bytes count in df once vault's next heartbeat reports them.
                try site.waitUntil("vault reports its quarantine", seconds: 60) {
                    try site.admin(["df"]).stdout.split(separator: "\n").contains {
                        $0.hasPrefix("vault ") && $0.contains("in quarantine")
                    }
                }
            }
        }
    }

    @Test func anAgentKilledMidPurgeFinishesItAfterItsRestartAndNothingIsHalfMoved() async throws {
        try await blocking {
            try withTemporaryDirectory("purge-kill") { dir in
                // Large copies, so that hashing each against the order takes a while.
                let conf = dir.file("conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                let site = try ProcessSite(
                    dir, nodes: [.init("srv1", sources: [("conf", "folder", conf)])], leaseSeconds: 6)
                try site.startCoordinator()
                try site.startAgent("srv1")
                try site.waitUntilOnline(1)
                let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
                defer { try? random.close() }  // A read-only handle: nothing to lose.
                for _ in 0..<6 {
                    try random.readData(ofLength: 16 << 20).write(to: URL(fileURLWithPath: conf + "/data.bin"))
                    try site.backup("conf", on: "srv1")
                    try site.settle()
                }
                let before = try Self.held(site, "srv1")
                #expect(before.count == 6)
                let doomed = Array(before.dropLast())
                var args = ["tasks", "submit", "--kind", "purge", "--node", "srv1"]
                for path in doomed { args += ["--artifact", path] }
                try ProcessSite.ok(try site.admin(args))
                // Killed as soon as its first copy reaches the trash.
                let trash = dir.file("store-srv1/.trash")
                try site.waitUntil("the purge moves its first copy", seconds: 60) {
                    FileManager.default.fileExists(atPath: trash)
                }
                site.stop("srv1", SIGKILL)
                let moved = try Store(root: dir.file("store-srv1")).trashEntries().count
                print("purge-kill: \(moved) of \(doomed.count) copies were in the trash at the kill")
                try site.startAgent("srv1")
                let tasks = try site.settle(seconds: 180)
                let purge = try #require(tasks.first { $0.kind == "purge" })
                #expect(purge.state == "succeeded", "\(purge)")
                // Every ordered copy is gone from the store and the catalog, each in the trash with
                // its sidecar; nothing half-moved: no artifact without its DNA, no sidecar alone.
                #expect(try Self.held(site, "srv1") == [before.last!])
                let store = Store(root: dir.file("store-srv1"))
                #expect(
                    try store.trashEntries().map(\.path).sorted() == doomed.sorted(), "\(moved) moved before the kill")
                for path in doomed {
                    #expect(!FileManager.default.fileExists(atPath: store.root + "/" + path + ".dna"), "\(path)")
                }
                let trashed = try FileManager.default.subpathsOfDirectory(atPath: trash).filter { $0.hasSuffix(".dna") }
                #expect(trashed.count == doomed.count, "\(trashed)")
                let local = try Command.scmBackup(["verify", "--store", dir.file("store-srv1")])
                #expect(local.status == 0, "\(local.stdout)\(local.stderr)")
                struct Listed: Decodable { var copies: [Copy]; struct Copy: Decodable { var path: String } }
                let listed = try site.json([Listed].self, ["artifacts", "--node", "srv1"]).flatMap(\.copies).map(\.path)
                #expect(listed == [before.last!])
            }
        }
    }
}
