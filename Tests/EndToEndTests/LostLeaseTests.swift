import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An agent that loses its lease stops the work: a Trac backup whose copy runs under
/// `svnadmin freeze` is cut when the hub stays away past the lease and the agent's
/// `offline_work_seconds` (5 s here; a node's own backup otherwise goes on through an outage
/// and is reported late, see ``DurableResultsTests``), the freeze ends with it (a commit to the
/// repository goes through within 5 s of the cancel), and nothing is left half-written.
@Suite(.timeLimit(.minutes(3)))
struct LostLeaseTests {
    @Test func aLostLeaseCancelsARunningBackupAndEndsItsFreeze() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let sources = dir.file("src")
                try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
                let repo = sources + "/repo"
                try SourceFixtures.svnRepository(at: repo)
                try SourceFixtures.tracEnvironment(at: sources + "/trac", repository: repo)
                // A trac-admin that hangs inside the freeze: it notes that it started, then sleeps.
                let started = dir.file("trac-admin-started")
                let slow = dir.file("slow-trac-admin")
                try "#!/bin/sh\ntouch '\(started)'\nsleep 120\nexec trac-admin \"$@\"\n".write(
                    toFile: slow, atomically: true, encoding: .utf8)
                chmod(slow, 0o755)

                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("repo", "svn", repo), ("tracenv", "trac", sources + "/trac")],
                            sourceExtra: ["tracenv": "svn_source = \"repo\""])
                    ], leaseSeconds: 5)
                try site.startCoordinator()
                try site.startAgent(
                    "srv1", sourceRoots: [sources], tools: ["trac_admin": slow], extra: "offline_work_seconds = 5")
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                try ProcessSite.ok(
                    try site.admin(["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "tracenv"]))
                try site.waitUntil("the Trac copy started under the freeze", seconds: 60) {
                    FileManager.default.fileExists(atPath: started)
                }

                // The hub goes away: renewals fail, and the lease runs out on the agent's clock.
                site.stop("hub", SIGKILL)
                let agentLog = site.process("srv1")!.logPath
                try site.waitUntil("the agent gave the task up", seconds: 30) {
                    (try String(contentsOfFile: agentLog, encoding: .utf8)).contains("lease lost; stopping the task")
                }
                let cancelled = Date()
                // A commit needs the write lock the freeze held.
                let commit = try Command.run("svnmucc", ["-m", "after the cancel", "mkdir", "file://\(repo)/after"])
                let waited = Date().timeIntervalSince(cancelled)
                #expect(commit.status == 0, "\(commit.stderr)")
                #expect(waited <= 5, "the commit waited \(waited) s for the freeze")
                try site.waitUntil("the tools are gone", seconds: 10) {
                    try Command.run("pgrep", ["-f", slow]).status != 0
                }
                // Nothing half-written: no partial, no staging left in the store.
                try site.waitUntil("the store is clean", seconds: 10) {
                    let store = dir.file("store-srv1")
                    let files = FileManager.default.enumerator(atPath: store)?.compactMap { $0 as? String } ?? []
                    return !files.contains { $0.hasSuffix(".partial") || $0.hasPrefix(".staging/") }
                }
                #expect(
                    (try String(contentsOfFile: agentLog, encoding: .utf8)).contains("task failed"),
                    "the agent reports the task as failed (lease-lost)")
            }
        }
    }
}
