import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A coordinator and agents as real processes on 127.0.0.1: tasks run, an agent killed with
/// SIGKILL mid-task loses its lease and its restart finishes the task, a coordinator killed and
/// restarted keeps its queue and agents reconnect.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct AgentProcessTests {
    struct Task: Decodable {
        var id: Int64
        var state: String
        var attempts: Int
        var lastError: String?
    }

    /// A site: CA, certificates, a coordinator on a fixed free port, and helpers.
    final class Site {
        let dir: TemporaryDirectory
        let port: Int
        var coordinator: BackgroundProcess?
        var agents: [String: BackgroundProcess] = [:]

        init(_ dir: TemporaryDirectory) throws {
            self.dir = dir
            port = try Site.freePort()
            let pki = dir.file("pki")
            try Self.ok(try Command.scmBackup(["pki", "init", "--dir", pki, "--site", "test"]))
            for (name, role) in [("hub", "coordinator"), ("root", "admin"), ("srv1", "agent")] {
                try Self.ok(
                    try Command.scmBackup([
                        "pki", "issue", "--dir", pki, "--name", name, "--role", role, "--ip", "127.0.0.1", "--out",
                        dir.file("certs"),
                    ]))
            }
        }

        deinit {
            for agent in agents.values { agent.stop(SIGKILL) }
            coordinator?.stop(SIGKILL)
        }

        static func ok(_ r: CommandResult) throws {
            guard r.status == 0 else {
                throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: r.stderr])
            }
        }

        /// A port that was free a moment ago (the coordinator must keep its port across restarts).
        static func freePort() throws -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            return Int(UInt16(bigEndian: address.sin_port))
        }

        var connection: [String] {
            ["--coordinator", "https://127.0.0.1:\(port)", "--ca", dir.file("pki/ca.pem")]
        }

        func startCoordinator(leaseSeconds: Int = 6) throws {
            try? FileManager.default.removeItem(atPath: dir.file("port"))  // A stale port file from an earlier run.
            coordinator = try BackgroundProcess(
                Paths.scmBackupBinary,
                [
                    "coordinator", "--listen", "127.0.0.1:\(port)", "--cert", dir.file("certs/hub.pem"), "--key",
                    dir.file("certs/hub.key"),
                    "--ca", dir.file("pki/ca.pem"), "--db", dir.file("catalog.sqlite"), "--port-file", dir.file("port"),
                    "--lease-seconds", "\(leaseSeconds)",
                ], log: dir.file("coordinator.log"))
            _ = try BackgroundProcess.waitForFile(dir.file("port"))
        }

        func startAgent(_ name: String, sources: [String]) throws {
            agents[name] = try BackgroundProcess(
                Paths.scmBackupBinary,
                [
                    "agent", "--store", dir.file("store-\(name)"), "--cert", dir.file("certs/\(name).pem"), "--key",
                    dir.file("certs/\(name).key"),
                    "--lease-wait", "2",
                ] + connection + sources.flatMap { ["--source", $0] },
                log: dir.file("agent-\(name).log"))
        }

        func admin(_ args: [String]) throws -> CommandResult {
            try Command.scmBackup(
                args + connection + ["--cert", dir.file("certs/root.pem"), "--key", dir.file("certs/root.key")])
        }

        func tasks() throws -> [Task] {
            let r = try admin(["tasks", "list", "--json"])
            try Self.ok(r)
            let decoder = JSONDecoder()
            return try decoder.decode([Task].self, from: Data(r.stdout.utf8))
        }

        /// Polls until `predicate` holds for task `id`, up to `seconds`.
        func waitFor(_ id: Int64, seconds: Double = 90, _ predicate: (Task) -> Bool) throws -> Task {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let task = try tasks().first(where: { $0.id == id }), predicate(task) { return task }
                usleep(200_000)
            }
            throw CocoaError(
                .featureUnsupported,
                userInfo: [NSLocalizedDescriptionKey: "task \(id) never reached the expected state"])
        }

        func submit(_ kind: String, source: String? = nil) throws -> Int64 {
            let r = try admin(
                ["tasks", "submit", "--kind", kind, "--node", "srv1", "--json"]
                    + (source.map { ["--source", $0] } ?? []))
            try Self.ok(r)
            struct Queued: Decodable { var id: Int64 }
            return try JSONDecoder().decode(Queued.self, from: Data(r.stdout.utf8)).id
        }

        func waitUntilRegistered() throws {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if try admin(["nodes"]).stdout.contains("srv1") { return }
                usleep(200_000)
            }
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "the agent never registered"])
        }
    }

    @Test func tasksRunOnTheAgentAndAKilledAgentsTaskIsFinishedByItsRestart() throws {
        try withTemporaryDirectory("agents") { dir in
            let site = try Site(dir)
            // A folder big enough that its backup is still running when the agent is killed.
            try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
            try "alice:x\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: dir.file("big"), withIntermediateDirectories: true)
            for i in 0..<4 {
                try Site.ok(
                    try Command.run("sh", ["-c", "head -c 40000000 /dev/urandom > '\(dir.file("big/blob\(i)"))'"]))
            }
            try site.startCoordinator()
            let sources = ["conf=folder:\(dir.file("conf"))", "big=folder:\(dir.file("big"))"]
            try site.startAgent("srv1", sources: sources)
            try site.waitUntilRegistered()

            let backup = try site.submit("backup", source: "conf")
            #expect(try site.waitFor(backup) { $0.state == "succeeded" }.attempts == 1)
            let verify = try site.submit("verify")
            #expect(try site.waitFor(verify) { $0.state == "succeeded" }.state == "succeeded")
            let foreign = try site.submit("backup", source: "etc")
            let failed = try site.waitFor(foreign) { $0.state == "failed" }
            #expect(failed.lastError?.contains("has no source 'etc' configured") == true)

            // Kill the agent while it backs up 'big'; its lease expires; the restart finishes it.
            let big = try site.submit("backup", source: "big")
            _ = try site.waitFor(big) { $0.state == "leased" }
            site.agents["srv1"]?.stop(SIGKILL)
            try site.startAgent("srv1", sources: sources)
            let done = try site.waitFor(big, seconds: 180) { $0.state == "succeeded" }
            #expect(done.attempts == 2, "\(site.agents["srv1"]?.output ?? "")")
            let verified = try Command.scmBackup(["verify", "--store", dir.file("store-srv1")])
            #expect(verified.status == 0, "\(verified.stdout)")
            #expect(verified.stdout.contains("2 artifacts: 2 ok"))

            // The coordinator dies and comes back: the running agent reconnects.
            site.coordinator?.stop(SIGKILL)
            try site.startCoordinator()
            let afterRestart = try site.submit("inventory")
            #expect(try site.waitFor(afterRestart) { $0.state == "succeeded" }.state == "succeeded")

            // A task queued while no agent runs survives a coordinator crash.
            #expect(site.agents["srv1"]!.stop(SIGTERM) == 0, "SIGTERM stops the agent cleanly")
            let queued = try site.submit("verify")
            site.coordinator?.stop(SIGKILL)
            try site.startCoordinator()
            #expect(try site.tasks().first { $0.id == queued }?.state == "queued")
            try site.startAgent("srv1", sources: sources)
            #expect(try site.waitFor(queued) { $0.state == "succeeded" }.state == "succeeded")
        }
    }
}
