import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A store knows who it is (issue 11, V8): the agent works only in the store whose marker
/// carries its `store_id`. Over an empty mount point or another disk it refuses to start, and
/// a disk that goes away under a running agent gets nothing written to it; with the right disk
/// back it works again. It never writes a marker itself.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct StoreIdentityTests {
    /// The folder's entries; a folder that cannot be read fails the test instead of looking empty.
    static func entries(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path)
    }

    @Test func anAgentRefusesAStoreThatIsNotItsOwnAndNeverMakesAMarker() async throws {
        try await blocking {
            try withTemporaryDirectory("store-identity") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                try "alice:x\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
                let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("conf", "folder", dir.file("conf"))])])
                try site.startCoordinator()
                try site.startAgent("srv1")
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                let store = dir.file("store-srv1")
                let id = try #require(site.storeIDs["srv1"])

                // The disk goes away under the running agent: an empty mount point is left.
                try FileManager.default.moveItem(atPath: store, toPath: dir.file("disk"))
                try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
                try ProcessSite.ok(
                    try site.admin(["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "conf"]))
                try site.waitUntil("the backup failed") {
                    try site.tasks().first.map {
                        $0.state == "failed" || $0.lastErrorCode != nil
                    } == true
                }
                #expect(try site.tasks().first?.lastErrorCode == "store-marker")
                let written = try Self.entries(store)
                #expect(written.isEmpty, "nothing written to the mount point: \(written)")

                // Restarted over the empty mount point, it refuses to start, naming the store and the fix.
                site.stop("srv1")
                try site.startAgent("srv1")
                try site.waitUntil("the agent exited", seconds: 30) { site.process("srv1")?.isRunning == false }
                var log = try #require(site.process("srv1")).output
                #expect(log.contains("Store '\(store)' has no marker file") && log.contains("store_id \(id)"), "\(log)")
                #expect(log.contains("init-store"))
                let made = try Self.entries(store)
                #expect(made.isEmpty, "no marker made: \(made)")

                // Another disk (another store's marker) is refused too.
                try FileManager.default.removeItem(atPath: store)
                try ProcessSite.ok(try Command.scmBackup(["init-store", "--store", store]))
                site.stop("srv1")
                try site.startAgent("srv1")
                try site.waitUntil("the agent exited", seconds: 30) { site.process("srv1")?.isRunning == false }
                log = try #require(site.process("srv1")).output
                #expect(log.contains("not store_id \(id)") && log.contains("is the right disk mounted"), "\(log)")

                // The right disk back: it works again.
                try FileManager.default.removeItem(atPath: store)
                try FileManager.default.moveItem(atPath: dir.file("disk"), toPath: store)
                site.stop("srv1")
                try site.startAgent("srv1")
                try ProcessSite.ok(
                    try site.admin(["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "conf"]))
                try site.waitUntil("the second backup succeeded") {
                    try site.tasks().first?.state == "succeeded"
                }
            }
        }
    }

    @Test func aConfigurationWithoutStoreIDSaysHowToGetOne() async throws {
        try await blocking {
            try withTemporaryDirectory("store-id-missing") { dir in
                let site = try ProcessSite(dir, nodes: [.init("srv1")])
                try SiteConfigFiles.writeAgent(
                    dir.file("agent.toml"), coordinator: "https://127.0.0.1:1", name: "srv1", certs: dir.file("certs"),
                    pki: dir.file("pki"), store: dir.file("store"))
                let text = try String(contentsOfFile: dir.file("agent.toml"), encoding: .utf8)
                let without = text.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.hasPrefix("store_id") }.joined(separator: "\n")
                try without.write(toFile: dir.file("agent.toml"), atomically: true, encoding: .utf8)
                let r = try Command.scmBackup(["agent", "--config", dir.file("agent.toml"), "--check"])
                #expect(r.status == 1)
                #expect(
                    r.stderr.contains("agent.store_id: missing") && r.stderr.contains("scm-backup init-store --store"))
                _ = site
            }
        }
    }
}
