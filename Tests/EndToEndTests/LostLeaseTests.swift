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
    /// A folder `src` with an svn repository `src/repo`.
    static func sourcesWithRepository(_ dir: TemporaryDirectory) throws -> (sources: String, repo: String) {
        let sources = dir.file("src")
        try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
        try SourceFixtures.svnRepository(at: sources + "/repo")
        return (sources, sources + "/repo")
    }

    /// A stand-in for `tool` that touches a file when it starts, then runs `then` (shell).
    static func hangingTool(_ dir: TemporaryDirectory, _ tool: String, then: String) throws
        -> (path: String, started: String)
    {
        let started = dir.file("\(tool)-started")
        let path = dir.file("hanging-\(tool)")
        try "#!/bin/sh\ntouch '\(started)'\n\(then)\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard chmod(path, 0o755) == 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        return (path, started)
    }

    @Test func aLostLeaseCancelsARunningBackupAndEndsItsFreeze() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let (sources, repo) = try Self.sourcesWithRepository(dir)
                try SourceFixtures.tracEnvironment(at: sources + "/trac", repository: repo)
                // A trac-admin that hangs inside the freeze: it notes that it started, then sleeps.
                let (slow, started) = try Self.hangingTool(dir, "trac-admin", then: "sleep 120\nexec trac-admin \"$@\"")

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

    /// W1: an agent that stops answering while its long poll is open (a hung process, a frozen
    /// host or a cut network: SIGSTOP here, so no FIN reaches the hub). The hub cannot know the
    /// poll is dead, so the next task goes to it; the lease asks for confirmation within 5 s,
    /// does not get it, and goes back without counting an attempt (it used to wait out the
    /// 60-s lease and run as attempt 2). An agent that dies outright closes its connection, and
    /// its poll is not handed the task at all.
    @Test func aTaskHandedToAHungAgentsOpenLongPollGoesBackAtOnce() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let sources = dir.file("src")
                try FileManager.default.createDirectory(atPath: sources + "/conf", withIntermediateDirectories: true)
                try "x".write(toFile: sources + "/conf/a.txt", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir, nodes: [.init("srv1", sources: [("conf", "folder", sources + "/conf")])], leaseSeconds: 60)
                try site.startCoordinator()
                try site.startAgent("srv1", sourceRoots: [sources], leaseWait: 25)
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                // Past its first, immediate lease request: the agent now waits in a long poll.
                let log = site.process("srv1")!.logPath
                try site.waitUntil("the agent registered") {
                    (try String(contentsOfFile: log, encoding: .utf8)).contains("registered")
                }
                Thread.sleep(forTimeInterval: 1)
                let hung = try #require(site.process("srv1"))
                kill(hung.pid, SIGSTOP)
                let hungAt = Date()
                try site.backup("conf", on: "srv1")
                var seen = ""
                do {
                    try site.waitUntil("the task is queued again", seconds: 30) {
                        guard let task = try site.tasks().first else { return false }
                        seen = "\(task.state) attempts \(task.attempts): \(task.lastError ?? "-")"
                        return task.state == "queued" && task.lastError?.contains("not confirmed") == true
                    }
                } catch {
                    Issue.record("the task is not back in the queue: \(seen)")
                    throw error
                }
                let back = Date().timeIntervalSince(hungAt)
                #expect(back < 20, "the task came back \(back) s after the agent hung, not after the 60-s lease")
                #expect(try site.tasks().first?.attempts == 0, "the dead poll's hand-out is not an attempt")
                // A live agent takes it and runs it as its first attempt.
                site.stop("srv1", SIGKILL)
                try site.startAgent("srv1", sourceRoots: [sources], leaseWait: 25)
                let done = try site.settle(seconds: 60)
                #expect(done.first?.state == "succeeded")
                #expect(done.first?.attempts == 1)
            }
        }
    }

    /// W14: a tool outlived its SIGKILLed agent (`svnadmin hotcopy` went on writing into the dead
    /// agent's staging folder). Tools now start through the agent's own executable, which asks
    /// the kernel to kill them when the agent goes (``ParentDeath``).
    @Test func aToolDiesWithItsSIGKILLedAgent() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let (sources, repo) = try Self.sourcesWithRepository(dir)
                // The sleep becomes the tool's own process (exec), as svnadmin is.
                let (hang, started) = try Self.hangingTool(dir, "svnadmin", then: "exec sleep 117")
                let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("repo", "svn", repo)])])
                try site.startCoordinator()
                try site.startAgent("srv1", sourceRoots: [sources], tools: ["svnadmin": hang])
                try site.waitUntil("srv1 registered") { try site.admin(["nodes"]).stdout.contains("online") }
                try site.backup("repo", on: "srv1")
                try site.waitUntil("the tool started", seconds: 60) { FileManager.default.fileExists(atPath: started) }
                // Should the tool outlive the agent (the failure this tests), it goes with the test;
                // pkill finding nothing is the passing case, so its status does not matter.
                defer {
                    do { _ = try Command.run("pkill", ["-f", "sleep 117"]) } catch {
                        Issue.record("pkill could not be run to clean up the hanging tool: \(error)")
                    }
                }
                let running = try Command.run("pgrep", ["-f", "sleep 117"])
                #expect(running.status == 0, "the hanging tool runs")
                site.stop("srv1", SIGKILL)
                try site.waitUntil("the tool is gone with its agent", seconds: 5) {
                    try Command.run("pgrep", ["-f", "sleep 117"]).status != 0
                }
            }
        }
    }
}
