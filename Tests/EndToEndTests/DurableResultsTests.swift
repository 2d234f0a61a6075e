import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Results survive the coordinator going away (issue 11, V1 and V2), with real processes: a
/// backup that finishes while the hub is down is catalogued once it is back and is not made
/// again; a copy pushed while the hub is down is catalogued from the receiver's journalled
/// report. Each agent journals its result in the store before sending it.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct DurableResultsTests {
    typealias Artifact = ProcessSite.ArtifactView

    static func log(_ site: ProcessSite, _ name: String) throws -> String {
        try String(
            contentsOfFile: site.dir.file(name == "hub" ? "coordinator.log" : "agent-\(name).log"), encoding: .utf8)
    }

    static func artifactFiles(_ folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? []).filter {
            $0.hasSuffix(".tar.gz") && !$0.hasPrefix(".")
        }
    }

    /// A hub and srv1, online, with one folder source `conf` holding one file.
    static func folderSite(_ dir: TemporaryDirectory) throws -> (ProcessSite, String) {
        let conf = dir.file("conf")
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try "state 1\n".write(toFile: conf + "/state.txt", atomically: true, encoding: .utf8)
        let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("conf", "folder", conf)])])
        try site.startCoordinator()
        try site.startAgent("srv1")
        try site.waitUntil("srv1 online") { try site.admin(["nodes"]).stdout.contains("online") }
        return (site, conf)
    }

    @Test func aBackupFinishedWhileTheHubIsDownIsCataloguedOnceAndNotMadeAgain() async throws {
        try await blocking {
            try withTemporaryDirectory("durable") { dir in
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 2)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("repo", "svn", dir.file("repo"))],
                            sourceExtra: ["repo": "pre_backup = \"slow\""])
                    ], leaseSeconds: 5)
                // A pre-backup step that notes it started, then takes longer than the lease.
                let (started, slow) = try site.slowStep(seconds: 8)
                try site.startCoordinator()
                try site.startAgent("srv1", extra: slow)
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                try site.backup("repo", on: "srv1")
                try site.waitUntil("the backup started") { FileManager.default.fileExists(atPath: started) }

                // The hub dies 1 s into the backup; the agent finishes it and cannot report it.
                site.stop("hub", SIGKILL)
                try site.waitUntil("the backup finished without the hub", seconds: 60) {
                    try Self.log(site, "srv1").contains("task succeeded")
                }
                let journal = dir.file("store-srv1/.scm-backup-results")
                // Journalled once its file has its final name (not while it is a .partial).
                try site.waitUntil("the result is journalled") {
                    ((try? FileManager.default.contentsOfDirectory(atPath: journal)) ?? []).contains {
                        $0.hasPrefix("task-") && $0.hasSuffix(".json")
                    }
                }
                #expect(
                    ((try? FileManager.default.contentsOfDirectory(atPath: journal)) ?? []).contains {
                        $0.hasPrefix("task-") && $0.hasSuffix(".json")
                    }, "the result is journalled in the store")

                // The agent dies too before the hub is back; both restart after the lease ran out:
                // the restarted agent sends its journal, the artifact is catalogued.
                site.stop("srv1", SIGKILL)
                try site.startCoordinator()
                try site.startAgent("srv1", extra: slow)
                try site.waitUntil("the backup task succeeded", seconds: 90) {
                    try site.tasks().first?.state == "succeeded"
                }
                let tasks = try site.tasks()
                #expect(tasks.count == 1 && tasks[0].attempts <= 2, "\(tasks)")
                let made = Self.artifactFiles(dir.file("store-srv1"))
                #expect(made.count == 1, "the backup ran once: \(made)")
                let artifacts = try site.json([Artifact].self, ["artifacts", "--source", "repo"])
                #expect(artifacts.count == 1, "\(artifacts)")
                #expect(artifacts.first?.copies.map { "\($0.node) \($0.state)" } == ["srv1 intact"])
                #expect(artifacts.first?.copies.first.map { made.contains($0.path) } == true)
                let agentLog = try Self.log(site, "srv1")
                #expect(agentLog.contains("sending a journalled result"), "the agent re-sent its journal")
                #expect(
                    !agentLog.contains("pre-backup step ran"), "the restarted agent did not run the backup again")
            }
        }
    }

    @Test func aSIGTERMMidBackupFinishesTheBackupAndReportsItBeforeExiting() async throws {
        try await blocking {
            try withTemporaryDirectory("durable-sigterm") { dir in
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 2)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("repo", "svn", dir.file("repo"))],
                            sourceExtra: ["repo": "pre_backup = \"slow\""])
                    ])
                let (started, slow) = try site.slowStep(seconds: 4)
                try site.startCoordinator()
                try site.startAgent("srv1", extra: slow)
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                try site.backup("repo", on: "srv1")
                try site.waitUntil("the backup started") { FileManager.default.fileExists(atPath: started) }
                let log = try #require(site.process("srv1")).logPath
                let status = site.stop("srv1", SIGTERM)
                #expect(status == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                let tasks = try site.tasks()
                #expect(tasks.first?.state == "succeeded", "finished and reported before the exit: \(tasks)")
                #expect(Self.artifactFiles(dir.file("store-srv1")).count == 1)
            }
        }
    }

    @Test func aCopyPushedWhileTheHubIsDownIsCatalogued() async throws {
        try await blocking {
            try withTemporaryDirectory("durable-copy") { dir in
                // 8 MiB that do not compress, pushed at 4 MiB/s: about 2 s on the wire.
                try FileManager.default.createDirectory(atPath: dir.file("big"), withIntermediateDirectories: true)
                var rng = SystemRandomNumberGenerator()
                try Data(rng.bytes((8 << 20))).write(
                    to: URL(fileURLWithPath: dir.file("big/blob.bin")))
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: [("big", "folder", dir.file("big"))]), .init("vault", roles: ["backup"]),
                    ],
                    pairings: [("srv1", "vault")], leaseSeconds: 12, transfers: true,
                    pairingExtra: ["vault": "bandwidth_limit = \"4 MiB/s\""])
                try site.startCoordinator()
                for name in ["srv1", "vault"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntil("both agents registered") {
                    try site.admin(["nodes"]).stdout.components(separatedBy: "online ").count - 1 == 2
                }
                try site.backup("big", on: "srv1")
                try site.waitUntil("the backup succeeded") { try site.tasks().first?.state == "succeeded" }
                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault"]))
                // The hub dies once the copy is on its way.
                try site.waitUntil("the copy is under way", seconds: 30) {
                    (FileManager.default.enumerator(atPath: dir.file("store-vault"))?.compactMap { $0 as? String } ?? [])
                        .contains { $0.hasSuffix(".partial") }
                }
                site.stop("hub", SIGKILL)
                try site.waitUntil("the receiver could not report the copy", seconds: 30) {
                    try Self.log(site, "vault").contains("could not report a received copy")
                }
                #expect(Self.artifactFiles(dir.file("store-vault")).count == 1)

                try site.startCoordinator()
                try site.waitUntil("the copy is catalogued", seconds: 60) {
                    let artifacts = try site.json([Artifact].self, ["artifacts", "--source", "big"])
                    return artifacts.first?.copies.contains { $0.node == "vault" && $0.state == "intact" } == true
                }
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                #expect(Self.artifactFiles(dir.file("store-vault")).count == 1)
            }
        }
    }

    /// Task ids are a catalog's own: after the hub starts on a new catalog (here one started
    /// afresh on purpose, without the counters' leap of a restore or a rebuild), its task 1 is
    /// backed up anew, never answered with the result the agent journalled for the lost task 1.
    @Test func aNewCatalogsTaskIsNeverAnsweredWithAJournalledResultOfAnotherCatalog() async throws {
        try await blocking {
            try withTemporaryDirectory("journal-epoch") { dir in
                let (site, _) = try Self.folderSite(dir)
                try site.backup("conf", on: "srv1")
                let first = try site.settle()
                #expect(first.map(\.id) == [1] && first.first?.state == "succeeded", "\(first)")
                site.stop("hub")
                for file in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite.epoch"]
                where FileManager.default.fileExists(atPath: dir.file(file)) {
                    try FileManager.default.removeItem(atPath: dir.file(file))
                }
                Thread.sleep(forTimeInterval: 1.2)  // The next backup gets another stamp.
                try site.startCoordinator()
                try site.waitUntil("srv1 online again") { try site.admin(["nodes"]).stdout.contains("online") }
                try site.backup("conf", on: "srv1")
                let second = try site.settle()
                #expect(second.map(\.id) == [1], "the new catalog's own task 1")
                #expect(second.first?.detail?.contains("backed up conf") == true, "\(second.first?.detail ?? "-")")
                #expect(Self.artifactFiles(dir.file("store-srv1/srv1")).count == 2, "made anew")
                #expect(!(try Self.log(site, "srv1")).contains("task done before"))
            }
        }
    }

    /// The agent died after its backup was published and before the result was journalled
    /// (simulated here: the artifact is made by the local CLI in the agent's store while the
    /// task waits): when the task comes back, that artifact is its result, not a second backup.
    /// A task queued after it makes a new one.
    @Test func aBackupPublishedButNeverJournalledIsReportedNotMadeAgain() async throws {
        try await blocking {
            try withTemporaryDirectory("unjournalled") { dir in
                let (site, conf) = try Self.folderSite(dir)
                site.stop("srv1", SIGKILL)
                try site.backup("conf", on: "srv1")
                // Made well after the task was queued (the agent allows two seconds for the wire's
                // whole-second times).
                Thread.sleep(forTimeInterval: 3.2)
                let store = dir.file("store-srv1")
                try ProcessSite.ok(
                    try Command.scmBackup([
                        "backup", "--store", store, "--node", "srv1", "--kind", "folder", "--name", "conf", conf,
                    ]))
                let artifacts = { Self.artifactFiles(store + "/srv1").sorted() }
                let made = artifacts()
                #expect(made.count == 1)
                try site.startAgent("srv1")
                let first = try site.settle()
                #expect(first.first?.state == "succeeded")
                #expect(first.first?.detail?.contains("never reported") == true, "\(first.first?.detail ?? "-")")
                #expect(artifacts() == made, "no second backup")
                let catalogued = try site.json([Artifact].self, ["artifacts"]).flatMap(\.copies).map(\.path)
                #expect(catalogued == made.map { "srv1/" + $0 })
                // A task queued well after that artifact backs up afresh.
                Thread.sleep(forTimeInterval: 3.2)
                try site.backup("conf", on: "srv1")
                let second = try site.settle()
                #expect(second.first?.detail?.contains("backed up conf") == true, "\(second.first?.detail ?? "-")")
                #expect(artifacts().count == 2)
            }
        }
    }
}
