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

    /// The site of these tests on the shared builder (``ProcessSite``): srv1's sources, its
    /// agent, and the helpers the tests read as sentences.
    final class Site {
        let base: ProcessSite
        var dir: TemporaryDirectory { base.dir }

        init(_ dir: TemporaryDirectory) throws {
            base = try ProcessSite(dir, nodes: [.init("srv1")])
        }

        static func ok(_ r: CommandResult) throws { try ProcessSite.ok(r) }

        /// The site's sources on srv1, as (name, kind, path); set before starting the coordinator.
        var sources: [(name: String, kind: String, path: String)] {
            get { base.nodes[0].sources }
            set { base.nodes[0].sources = newValue }
        }

        var coordinator: BackgroundProcess? { base.process("hub") }
        var agents: [String: BackgroundProcess] { base.processes.filter { $0.key != "hub" } }

        /// Starts the coordinator (on the port of its first start, after a restart).
        func startCoordinator(leaseSeconds: Int = 6) throws {
            base.leaseSeconds = Double(leaseSeconds)
            try base.startCoordinator()
        }

        /// Starts srv1's agent; its sources must lie under `sourceRoot`.
        func startAgent(_ name: String, sourceRoot: String) throws {
            try base.startAgent(name, sourceRoots: [sourceRoot])
        }

        func admin(_ args: [String]) throws -> CommandResult { try base.admin(args) }

        func tasks() throws -> [Task] { try base.json([Task].self, ["tasks", "list"]) }

        /// Polls until `predicate` holds for task `id`, up to `seconds`.
        func waitFor(_ id: Int64, seconds: Double = 90, _ predicate: (Task) -> Bool) throws -> Task {
            var found: Task?
            try base.waitUntil("task \(id) reached the expected state", seconds: seconds) {
                found = try tasks().first(where: { $0.id == id }).flatMap { predicate($0) ? $0 : nil }
                return found != nil
            }
            return found!
        }

        func submit(_ kind: String, source: String? = nil, artifacts: [String] = []) throws -> Int64 {
            struct Queued: Decodable { var id: Int64 }
            return try base.json(
                Queued.self,
                ["tasks", "submit", "--kind", kind, "--node", "srv1"] + (source.map { ["--source", $0] } ?? [])
                    + artifacts.flatMap { ["--artifact", $0] }
            ).id
        }

        func waitUntilRegistered() throws {
            try base.waitUntil("the agent registered") { try admin(["nodes"]).stdout.contains("srv1") }
        }
    }

    @Test func tasksRunOnTheAgentAndAKilledAgentsTaskIsFinishedByItsRestart() async throws {
        try await blocking {
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
                site.sources = [
                    ("conf", "folder", dir.file("conf")), ("big", "folder", dir.file("big")),
                    ("etc", "folder", "/etc/ssl"),
                ]
                try site.startCoordinator()
                try site.startAgent("srv1", sourceRoot: dir.path)
                try site.waitUntilRegistered()

                let backup = try site.submit("backup", source: "conf")
                let first = try site.waitFor(backup) { $0.state == "succeeded" }
                #expect(first.attempts == 1)
                let verify = try site.submit("verify")
                #expect(try site.waitFor(verify) { $0.state == "succeeded" }.state == "succeeded")
                let unknown = try site.admin([
                    "tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "home",
                ])
                #expect(unknown.status == 1)
                #expect(unknown.stderr.contains("Node 'srv1' has no source 'home' in the site configuration"))
                // The hub names a source outside the agent's source_roots: the agent refuses it.
                let outside = try site.submit("backup", source: "etc")
                let failed = try site.waitFor(outside) { $0.state == "failed" }
                #expect(failed.lastError?.contains("outside this node's source_roots") == true, "\(failed)")

                // Kill the agent while it backs up 'big'; its lease expires; the restart finishes it.
                let big = try site.submit("backup", source: "big")
                _ = try site.waitFor(big) { $0.state == "leased" }
                site.agents["srv1"]?.stop(SIGKILL)
                try site.startAgent("srv1", sourceRoot: dir.path)
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
                try site.startAgent("srv1", sourceRoot: dir.path)
                #expect(try site.waitFor(queued) { $0.state == "succeeded" }.state == "succeeded")
            }
        }
    }

    struct Artifact: Decodable {
        struct Copy: Decodable {
            var node: String
            var path: String
            var state: String
            var verifiedAt: Date?
        }
        var source: String
        var sha256: String?
        var copies: [Copy]
    }

    @Test func theCatalogKnowsEveryCopyAndAPurgeDeletesExactlyWhatItNames() async throws {
        try await blocking {
            try withTemporaryDirectory("catalog") { dir in
                let site = try Site(dir)
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                site.sources = [("conf", "folder", dir.file("conf"))]
                try site.startCoordinator()
                try site.startAgent("srv1", sourceRoot: dir.path)
                try site.waitUntilRegistered()
                for i in 0..<3 {
                    try "alice:\(i)\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
                    let id = try site.submit("backup", source: "conf")
                    #expect(try site.waitFor(id) { $0.state == "succeeded" }.state == "succeeded")
                }
                func artifacts() throws -> [Artifact] {
                    let r = try site.admin(["artifacts", "--node", "srv1", "--json"])
                    try Site.ok(r)
                    let decoder = JSONDecoder()
                    decoder.dateDecodingStrategy = .iso8601
                    return try decoder.decode([Artifact].self, from: Data(r.stdout.utf8))
                }
                var known = try artifacts()
                // Required: the lines below index the three copies; a missing one must not crash the run.
                try #require(known.count == 3)
                #expect(known.allSatisfy { $0.copies.count == 1 && $0.copies[0].state == "intact" && $0.sha256 != nil })
                let paths = known.map { $0.copies[0].path }

                // One flipped byte in the oldest copy: the next verify reports it to the catalog.
                let oldest = dir.file("store-srv1/" + paths[0])
                let handle = try #require(FileHandle(forUpdatingAtPath: oldest))
                try handle.seek(toOffset: 20)
                let byte = try #require(try handle.read(upToCount: 1)?.first)
                try handle.seek(toOffset: 20)
                try handle.write(contentsOf: Data([byte ^ 0xFF]))
                try handle.close()
                let verify = try site.submit("verify")
                #expect(try site.waitFor(verify) { $0.state == "succeeded" }.state == "succeeded")
                let listing = try site.admin(["tasks", "list"])
                #expect(listing.stdout.contains("1 mutant"), "\(listing.stdout)")
                known = try artifacts()
                #expect(known[0].copies[0].state == "quarantined")
                let quarantined = dir.file("store-srv1/.quarantine/" + paths[0])
                #expect(FileManager.default.fileExists(atPath: quarantined), "a mutant is moved aside, never deleted")
                #expect(!FileManager.default.fileExists(atPath: oldest))
                #expect(known[1].copies[0].state == "intact" && known[1].copies[0].verifiedAt != nil)

                // A purge deletes exactly what it names, but never the newest copy that verifies.
                let purge = try site.submit("purge", artifacts: [paths[1], paths[2]])
                #expect(try site.waitFor(purge) { $0.state == "succeeded" }.state == "succeeded")
                let purgeLine = try site.admin(["tasks", "list"]).stdout.split(separator: "\n").first {
                    $0.hasPrefix("\(purge) ")
                }
                #expect(
                    purgeLine?.contains("deleted 1 artifacts; kept \(paths[2]) (newest verified)") == true,
                    "\(purgeLine ?? "")")
                #expect(!FileManager.default.fileExists(atPath: dir.file("store-srv1/" + paths[1])))
                #expect(FileManager.default.fileExists(atPath: dir.file("store-srv1/" + paths[2])))
                #expect(FileManager.default.fileExists(atPath: quarantined), "the mutant is not touched")
                known = try artifacts()
                #expect(known.map { $0.copies[0].path } == [paths[0], paths[2]])

                // A mutant is kept for quarantine and repair: no purge order may name it.
                let mutant = try site.admin([
                    "tasks", "submit", "--kind", "purge", "--node", "srv1", "--artifact", paths[0],
                ])
                #expect(mutant.status == 1)
                #expect(
                    mutant.stderr.contains("failed verification (quarantined): it is kept for quarantine and repair"))

                // An order naming a path outside the layout deletes nothing and says why.
                let evil = try site.admin([
                    "tasks", "submit", "--kind", "purge", "--node", "srv1", "--artifact", "../x.tar.gz",
                ])
                #expect(evil.status == 1)
                #expect(evil.stderr.contains("The catalog knows no copy '../x.tar.gz' on node 'srv1'"))

                // An inventory lists the store completely; the catalog follows it, keeping the
                // quarantined copy on record until it is repaired.
                try FileManager.default.removeItem(atPath: dir.file("store-srv1/" + paths[2]))
                let inventory = try site.submit("inventory")
                #expect(try site.waitFor(inventory) { $0.state == "succeeded" }.state == "succeeded")
                known = try artifacts()
                #expect(known.map { $0.copies.first?.path } == [paths[0]])
                #expect(known.first?.copies.first?.state == "quarantined")
            }
        }
    }
}
