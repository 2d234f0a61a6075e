import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A hub lost with its catalog, site file and self-backup folder, brought back on a fresh
/// folder: its keys from the operator's safe (`pki import-hub`), its catalog and site file from
/// the self-backup a backup node holds (`hub restore`), and a run completed with no agent's file
/// touched and no agent restarted.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct HubRestoreTests {
    typealias Artifact = ProcessSite.ArtifactView

    struct Node: Decodable {
        var name: String
        var dataPort: Int?
    }

    /// The snapshots in `folder` (none before the hub made it).
    static func snapshots(_ folder: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: folder) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func aHubKilledAndRestoredIntoAFreshFolderCompletesARunWithoutTouchingAnAgent() async throws {
        try await blocking {
            try withTemporaryDirectory("hub-restore") { dir in
                var passed = false
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 3)
                let selfBackup = dir.file("self-backup")
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("hubhost", roles: ["hub", "server"], sources: [("hub-self", "folder", selfBackup)]),
                        .init("srv1", sources: [("env", "svn", dir.file("repo"))]),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault"), ("hubhost", "vault")], transfers: true,
                    coordinatorExtra: "self_backup = \(SiteConfigFiles.quote(selfBackup))")
                defer {
                    // What the processes said, when the test failed (for CI); a missing log is empty.
                    if !passed {
                        site.printLogs(["coordinator.log", "agent-srv1.log", "agent-vault.log", "agent-hubhost.log"])
                    }
                }
                try site.startCoordinator()
                for name in ["hubhost", "srv1", "vault"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntilOnline(3)
                let agentFiles = try ["hubhost", "srv1", "vault"].map {
                    try Data(contentsOf: URL(fileURLWithPath: dir.file("agent-\($0).toml")))
                }
                // At installation the operator put the hub's keys in a safe, encrypted to their key.
                for args in [
                    ["genpkey", "-algorithm", "X25519", "-out", dir.file("op.key")],
                    ["pkey", "-in", dir.file("op.key"), "-pubout", "-out", dir.file("op.pub")],
                ] {
                    let r = try Command.run("openssl", args)
                    #expect(r.status == 0, "\(r.stderr)")
                }
                try ProcessSite.ok(
                    try Command.scmBackup([
                        "pki", "export-hub", "--config", dir.file("site.toml"), "--to", dir.file("safe.json"),
                        "--recipient", dir.file("op.pub"),
                    ]))

                // Run 1, after which the hub takes a snapshot; run 2 ships it to vault.
                #expect(try site.admin(["run", "--wait", "--poll-seconds", "0.5"]).status == 0)
                try site.waitUntil("the snapshot after run 1") { try Self.snapshots(selfBackup).count >= 2 }
                let before = try site.json([Artifact].self, ["artifacts"])
                #expect(before.count == 2 && before.allSatisfy { $0.copies.count == 2 }, "\(before)")
                let second = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
                let vaultPort = try #require(
                    try site.json([Node].self, ["nodes"]).first { $0.name == "vault" }?.dataPort)

                // The hub's machine is lost: its process, catalog, site file and snapshots.
                site.stop("hub", SIGKILL)
                for file in [
                    "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite.epoch", "site.toml",
                ]
                where FileManager.default.fileExists(atPath: dir.file(file)) {
                    try FileManager.default.removeItem(atPath: dir.file(file))
                }
                try FileManager.default.removeItem(atPath: selfBackup)

                // A new hub: the keys from the safe, this machine's own [coordinator] table.
                let hub2 = dir.file("hub2")
                try ProcessSite.ok(
                    try Command.scmBackup([
                        "pki", "import-hub", "--from", dir.file("safe.json"), "--identity", dir.file("op.key"), "--to",
                        hub2 + "/keys",
                    ]))
                let bootstrap = """
                    [coordinator]
                    listen = "127.0.0.1:\(site.port)"
                    certificate = \(SiteConfigFiles.quote(hub2 + "/keys/hub.pem"))
                    key = \(SiteConfigFiles.quote(hub2 + "/keys/hub.key"))
                    ca = \(SiteConfigFiles.quote(hub2 + "/keys/ca.pem"))
                    revoked = \(SiteConfigFiles.quote(hub2 + "/revoked.json"))
                    database = \(SiteConfigFiles.quote(hub2 + "/catalog.sqlite"))
                    lease_seconds = 6
                    retry_seconds = 1
                    ticket_key = \(SiteConfigFiles.quote(hub2 + "/keys/ticket-signing.key"))
                    purge_key = \(SiteConfigFiles.quote(hub2 + "/keys/purge-signing.key"))
                    self_backup = \(SiteConfigFiles.quote(selfBackup))

                    """
                try bootstrap.write(toFile: hub2 + "/site.toml", atomically: true, encoding: .utf8)
                let restoreArgs = [
                    "hub", "restore", "--config", hub2 + "/site.toml", "--from", "vault", "--data-url",
                    "https://127.0.0.1:\(vaultPort)", "--origin", "hubhost", "--source", "hub-self",
                ]
                let siteBefore = try Data(contentsOf: URL(fileURLWithPath: hub2 + "/site.toml"))
                func refused(_ args: [String], _ message: String) throws {
                    let r = try Command.scmBackup(args)
                    #expect(r.status == 1 && r.stderr.contains(message), "\(r.stdout)\(r.stderr)")
                    #expect(!FileManager.default.fileExists(atPath: hub2 + "/catalog.sqlite"), "nothing restored")
                    #expect(try Data(contentsOf: URL(fileURLWithPath: hub2 + "/site.toml")) == siteBefore)
                }
                // A hub with keys of its own: the backup node refuses its tickets until its agent
                // trusts the new key (trusted_signing_keys); nothing is read or written.
                try ProcessSite.ok(
                    try Command.scmBackup(["pki", "init", "--dir", dir.file("other-pki"), "--site", "other"]))
                try bootstrap.replacingOccurrences(
                    of: hub2 + "/keys/ticket-signing.key", with: dir.file("other-pki/ticket-signing.key")
                )
                .write(toFile: hub2 + "/site.toml", atomically: true, encoding: .utf8)
                let otherSite = try Data(contentsOf: URL(fileURLWithPath: hub2 + "/site.toml"))
                let r = try Command.scmBackup(restoreArgs)
                #expect(r.status == 1 && r.stderr.contains("not among the keys trusted here"), "\(r.stderr)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: hub2 + "/site.toml")) == otherSite)
                #expect(!FileManager.default.fileExists(atPath: hub2 + "/catalog.sqlite"))
                try bootstrap.write(toFile: hub2 + "/site.toml", atomically: true, encoding: .utf8)
                // The copy on vault rots: its bytes are not its receipt's, and nothing is restored.
                let copies = try FileManager.default.subpathsOfDirectory(atPath: dir.file("store-vault/hubhost"))
                    .filter { $0.hasSuffix(".tar.gz") }.sorted()
                let rotten = dir.file("store-vault/hubhost/" + (try #require(copies.last)))
                let original = try Data(contentsOf: URL(fileURLWithPath: rotten))
                var flipped = original
                flipped[flipped.count / 2] ^= 0x01
                try flipped.write(to: URL(fileURLWithPath: rotten))
                try refused(restoreArgs, "Mutant transfer")
                try original.write(to: URL(fileURLWithPath: rotten))
                // An artifact at a stamp the node does not hold is named with those it does.
                try refused(
                    restoreArgs + ["--at", "1999/01/01/000000"], "has no artifact of 'hubhost/folder/hub-self' at stamp"
                )

                let restored = try Command.scmBackup(restoreArgs)
                #expect(restored.status == 0, "\(restored.stdout)\(restored.stderr)")
                #expect(
                    restored.stdout.contains("restored the hub from hubhost/folder/hub-self/"), "\(restored.stdout)")
                #expect(restored.stdout.contains("purging is paused site-wide"))
                #expect(FileManager.default.fileExists(atPath: hub2 + "/revoked.json"))
                // Again: the catalog is there now and is never replaced.
                let again = try Command.scmBackup(restoreArgs)
                #expect(again.status == 1 && again.stderr.contains("catalog.sqlite' exists"), "\(again.stderr)")
                let siteFile = try String(contentsOfFile: hub2 + "/site.toml", encoding: .utf8)
                #expect(siteFile.contains("[nodes.srv1]") && siteFile.contains(hub2 + "/keys/hub.pem"))

                // It starts on the old address; the agents find it by themselves.
                try site.startCoordinator(configFile: hub2 + "/site.toml")
                try site.waitUntilOnline(3)
                let after = try site.json([Artifact].self, ["artifacts"])
                for artifact in before {
                    let found = try #require(
                        after.first { $0.fileName == artifact.fileName && $0.source == artifact.source },
                        "\(artifact.fileName) lost")
                    #expect(found.sha256 == artifact.sha256)
                    #expect(Set(found.copies.map(\.node)).isSuperset(of: artifact.copies.map(\.node)))
                }
                let status = try site.admin(["status"])
                #expect(status.stdout.contains("PAUSED site-wide by hub"), "\(status.stdout)")
                #expect(status.stdout.contains("hub restored from a self-backup"), "\(status.stdout)")
                let events = try site.admin(["events"])
                #expect(events.stdout.contains("hub restore"), "\(events.stdout)")

                // A whole run on the restored hub: new tickets, the same keys, a new epoch.
                let third = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
                #expect(third.stdout.contains("srv1/env  succeeded  1/1 copies"), "\(third.stdout)")
                let agentFilesAfter = try ["hubhost", "srv1", "vault"].map {
                    try Data(contentsOf: URL(fileURLWithPath: dir.file("agent-\($0).toml")))
                }
                #expect(agentFilesAfter == agentFiles, "no agent file was edited")
                #expect(["hubhost", "srv1", "vault"].allSatisfy { site.process($0) != nil })
                passed = third.status == 0
            }
        }
    }
}
