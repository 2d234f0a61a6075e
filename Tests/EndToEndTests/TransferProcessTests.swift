import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Agent-to-agent transfers with real processes on 127.0.0.1: a coordinator, a server node
/// `srv1`, a backup node `vault` it pushes to and a backup node `vault2` that pulls from it
/// (bandwidth-limited); resumption after a receiver is killed; a mutant quarantined and
/// repaired from a good copy.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct TransferProcessTests {
    struct Task: Decodable {
        var id: Int64
        var state: String
        var attempts: Int
        var lastError: String?
        var detail: String?
        var kind: String
    }

    struct Artifact: Decodable {
        struct Copy: Decodable {
            var node: String
            var path: String
            var state: String
        }
        var source: String
        var copies: [Copy]
    }

    /// The site of these tests on the shared builder (``ProcessSite``): srv1 pushing to vault,
    /// vault2 pulling from it at 6 MiB/s, transfers stalled for 5 s cut and resumed.
    final class Site {
        let base: ProcessSite
        var dir: TemporaryDirectory { base.dir }
        var processes: [String: BackgroundProcess] { base.processes }

        init(_ dir: TemporaryDirectory, sources: [(name: String, kind: String, path: String)]) throws {
            base = try ProcessSite(
                dir,
                nodes: [
                    .init("srv1", sources: sources), .init("vault", roles: ["backup"]),
                    .init("vault2", roles: ["backup"]),
                ], pairings: [("srv1", "vault"), ("srv1", "vault2")], leaseSeconds: 6, transfers: true,
                pairingExtra: ["vault2": "direction = \"pull\"\nbandwidth_limit = \"6 MiB/s\""])
            try base.startCoordinator()
            for name in ["srv1", "vault", "vault2"] { try start(name) }
        }

        func start(_ name: String) throws {
            try base.startAgent(name, dataPort: true, extra: "stall_seconds = 5")
        }

        func admin(_ args: [String]) throws -> CommandResult { try base.admin(args) }

        func json<T: Decodable>(_ type: T.Type, _ args: [String]) throws -> T { try base.json(type, args) }

        func tasks() throws -> [Task] { try json([Task].self, ["tasks", "list"]) }

        /// Waits until every task is finished; returns them.
        func settle(seconds: Double = 120) throws -> [Task] {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let all = try tasks()
                if all.allSatisfy({ ["succeeded", "failed", "cancelled"].contains($0.state) }) { return all }
                usleep(250_000)
            }
            throw CocoaError(
                .featureUnsupported,
                userInfo: [
                    NSLocalizedDescriptionKey: "tasks did not finish: \(try tasks().map { "\($0.id) \($0.state)" })"
                ])
        }

        func waitUntilOnline(_ count: Int) throws {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if try admin(["nodes"]).stdout.components(separatedBy: "online ").count - 1 == count { return }
                usleep(200_000)
            }
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "agents never came online"])
        }

        func backup(_ source: String) throws {
            try ProcessSite.ok(
                try admin(["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", source]))
        }

        func bytes(_ node: String, _ path: String) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: dir.file("store-\(node)/" + path)))
        }
    }

    @Test func pushPullSkipAndRepairOfAMutantFromTheOrigin() async throws {
        try await blocking {
            try withTemporaryDirectory("transfer") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                try "alice:x\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 3)
                let site = try Site(
                    dir, sources: [("conf", "folder", dir.file("conf")), ("env", "svn", dir.file("repo"))])
                try site.waitUntilOnline(3)
                try site.backup("conf")
                try site.backup("env")
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                // The answer to each backup's result brought its receipt to the origin.
                for a in try site.json([Artifact].self, ["artifacts"]) {
                    let file = dir.file("store-srv1/" + a.copies[0].path)
                    #expect(try Store.receipt(beside: file) != nil, "\(file)")
                }

                // Push to vault, pull by vault2.
                let pushed = try site.admin(["transfer", "--from", "srv1", "--to", "vault"])
                #expect(pushed.stdout.contains("2 transfers queued, 0 skipped"), "\(pushed.stdout)\(pushed.stderr)")
                #expect(pushed.stdout.contains("queued task 3: push"))
                let pulled = try site.admin(["transfer", "--from", "srv1", "--to", "vault2", "--source", "env"])
                #expect(pulled.stdout.contains("1 transfers queued"), "\(pulled.stdout)\(pulled.stderr)")
                #expect(pulled.stdout.contains(": pull "))
                let done = try site.settle()
                #expect(done.allSatisfy { $0.state == "succeeded" }, "\(done)")
                #expect(
                    done.contains {
                        $0.detail?.contains("received ") == true && $0.detail?.contains("srv1 -> vault2") == true
                    })
                var artifacts = try site.json([Artifact].self, ["artifacts"])
                for a in artifacts {
                    let path = a.copies[0].path
                    let holders = a.copies.filter { $0.state == "intact" }.map(\.node).sorted()
                    #expect(
                        holders == (a.source == "env" ? ["srv1", "vault", "vault2"] : ["srv1", "vault"]), "\(path)")
                    #expect(try site.bytes("vault", path) == site.bytes("srv1", path))
                    // Each holder keeps the hub's receipt beside its copy: signed with the
                    // ticket key, of this path and these bytes.
                    let keys = try SigningKeyring(files: [dir.file("pki/ticket-signing.pub")])
                    for node in holders {
                        let file = dir.file("store-\(node)/" + path)
                        let text = try #require(try Store.receipt(beside: file), "no receipt on \(node): \(path)")
                        let receipt = try ArtifactReceipt.verify(text, keys: keys)
                        var digests = DigestAccumulator(.sha256)
                        try site.bytes(node, path).withUnsafeBytes { digests.update($0) }
                        #expect(receipt.mismatch(path: path, digests: digests.finalize()) == nil, "\(node): \(path)")
                        #expect(receipt.facts.origin == "srv1" && receipt.facts.source == a.source)
                    }
                }

                // Again: everything is there, no byte moves, no task is queued.
                let again = try site.admin(["transfer", "--from", "srv1", "--to", "vault"])
                #expect(again.stdout.contains("0 transfers queued, 2 skipped"), "\(again.stdout)")

                // A byte flips on vault's copy of env: its verify quarantines it, a repair follows.
                let env = try #require(artifacts.first { $0.source == "env" }).copies[0].path
                let handle = try #require(FileHandle(forUpdatingAtPath: dir.file("store-vault/" + env)))
                try handle.seek(toOffset: 100)
                let byte = try #require(try handle.read(upToCount: 1)?.first)
                try handle.seek(toOffset: 100)
                try handle.write(contentsOf: Data([byte ^ 0x10]))
                try handle.close()
                let earlier = try site.tasks().count
                let verify = try site.admin(["verify", "--node", "vault"])
                #expect(verify.status == 0, "\(verify.stderr)")
                // The repair is queued as the verify's result is taken, just after the verify
                // ended: wait for both, not merely for every task listed so far.
                var repaired: [Task] = []
                try site.base.waitUntil("the verify and its repair ended", seconds: 120) {
                    repaired = try site.tasks()
                    return repaired.count >= earlier + 2
                        && repaired.allSatisfy { ["succeeded", "failed", "cancelled"].contains($0.state) }
                }
                #expect(repaired.allSatisfy { $0.state == "succeeded" }, "\(repaired)")
                #expect(repaired.contains { $0.kind == "verify" && $0.detail?.contains("1 mutant") == true })
                #expect(FileManager.default.fileExists(atPath: dir.file("store-vault/.quarantine/" + env)))
                #expect(try site.bytes("vault", env) == site.bytes("srv1", env), "repaired from the origin")
                let mutants = try site.admin(["mutants"])
                #expect(mutants.status == 0, "\(mutants.stdout)")
                #expect(mutants.stdout.contains("no mutants"))
                artifacts = try site.json([Artifact].self, ["artifacts", "--source", "env"])
                #expect(artifacts[0].copies.first { $0.node == "vault" }?.state == "intact")
            }
        }
    }

    /// The puller (vault2, the receiver) killed at several points, or the sender (srv1) killed
    /// mid-stream: after restarting, the transfer resumes from the partial to identical bytes.
    @Test(arguments: [("vault2", 1_500_000), ("vault2", 18_000_000), ("srv1", 8_000_000)])
    func aTransferInterruptedByAKilledAgentResumesToIdenticalBytes(_ victim: String, _ at: Int) async throws {
        try await blocking {
            try withTemporaryDirectory("transfer-resume") { dir in
                // 24 MB of noise: 4 s at vault2's 6 MiB/s, long enough to kill an agent midway.
                try FileManager.default.createDirectory(atPath: dir.file("big"), withIntermediateDirectories: true)
                try ProcessSite.ok(
                    try Command.run("sh", ["-c", "head -c 24000000 /dev/urandom > '\(dir.file("big/blob"))'"]))
                let site = try Site(dir, sources: [("big", "folder", dir.file("big"))])
                try site.waitUntilOnline(3)
                try site.backup("big")
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault2"]))
                let path = try site.json([Artifact].self, ["artifacts"])[0].copies[0].path
                let partial = dir.file("store-vault2/" + path + ".partial")
                let deadline = Date().addingTimeInterval(60)
                var sawProgress = false
                while Date() < deadline, (try FileSystem.linkStatus(partial)?.st_size ?? 0) < at {
                    if !sawProgress {
                        let listing = try site.admin(["tasks"]).stdout
                        sawProgress = listing.contains("receiving from srv1 ") && listing.contains("/s, ETA")
                    }
                    usleep(50_000)
                }
                site.processes[victim]?.stop(SIGKILL)
                let left = try #require(try FileSystem.linkStatus(partial)).st_size
                #expect(left > 0 && left < 24_000_000, "killed mid-transfer at \(left) bytes")
                #expect(!FileManager.default.fileExists(atPath: dir.file("store-vault2/" + path)))
                try site.start(victim)
                let done = try site.settle(seconds: 180)
                let transfer = try #require(done.first { $0.kind == "transfer" })
                #expect(transfer.state == "succeeded", "\(transfer)")
                if victim == "vault2" {
                    #expect(transfer.attempts == 2, "the dead lease expired and the restart took the task")
                }
                #expect(transfer.detail?.contains("resumed at byte") == true, "\(transfer.detail ?? "")")
                #expect(try site.bytes("vault2", path) == site.bytes("srv1", path))
                #expect(!FileManager.default.fileExists(atPath: partial))
                if at > 8_000_000 { #expect(sawProgress, "progress with bytes and rate is shown while it runs") }
            }
        }
    }
}
