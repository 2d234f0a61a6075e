import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Verification judges against the catalog and every damage leads to a repair (issue 11, V3,
/// V4, V6, V7), with real processes: srv1 pushes four artifacts to vault, whose copies are then
/// damaged in four ways. One verify of vault rewrites a deleted and a garbled sidecar from the
/// catalog's facts, quarantines an artifact swapped together with its sidecar, reports an
/// artifact removed beside its sidecar as missing, and the last two are repaired from srv1. A
/// mutant that cannot be moved aside is still reported.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct VerifyRepairTests {
    typealias Artifact = ProcessSite.ArtifactView

    @Test func everyDamageIsRepairedOrReported() async throws {
        try await blocking {
            try withTemporaryDirectory("verify-repair") { dir in
                let names = ["deleted", "garbled", "swapped", "removed"]
                for (i, name) in names.enumerated() {
                    try FileManager.default.createDirectory(atPath: dir.file(name), withIntermediateDirectories: true)
                    try String(repeating: "\(name) \(i)\n", count: 200 + i).write(
                        toFile: dir.file("\(name)/file.txt"), atomically: true, encoding: .utf8)
                }
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: names.map { ($0, "folder", dir.file($0)) }),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault")], transfers: true)
                try site.startCoordinator()
                for name in ["srv1", "vault"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntil("both online") {
                    try site.admin(["nodes"]).stdout.components(separatedBy: "online ").count - 1 == 2
                }
                for name in names { try site.backup(name, on: "srv1") }
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault"]))
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                var path: [String: String] = [:]
                for a in try site.json([Artifact].self, ["artifacts"]) { path[a.source] = a.copies[0].path }
                let vault = { (source: String) in dir.file("store-vault/" + path[source]!) }
                let origin = { (source: String) in dir.file("store-srv1/" + path[source]!) }
                func bytes(_ p: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: p)) }
                let goodSidecar = try bytes(vault("deleted") + ".dna")

                // The damage.
                try FileManager.default.removeItem(atPath: vault("deleted") + ".dna")
                let garbledBytes = try bytes(vault("garbled"))
                let garbledSidecar = try String(contentsOfFile: vault("garbled") + ".dna", encoding: .utf8)
                try Data("{\"format\": \"scm-backup-dna/1\", \"sha25".utf8).write(
                    to: URL(fileURLWithPath: vault("garbled") + ".dna"))
                // "swapped" gets garbled's bytes, with a sidecar that agrees with them.
                let swappedName = (path["swapped"]! as NSString).lastPathComponent
                let garbledName = (path["garbled"]! as NSString).lastPathComponent
                try garbledBytes.write(to: URL(fileURLWithPath: vault("swapped")))
                try garbledSidecar.replacingOccurrences(of: garbledName, with: swappedName).write(
                    toFile: vault("swapped") + ".dna", atomically: true, encoding: .utf8)
                // "removed" loses its artifact, its sidecar stays.
                try FileManager.default.removeItem(atPath: vault("removed"))

                try ProcessSite.ok(try site.admin(["verify", "--node", "vault"]))
                let tasks = try site.settle()
                #expect(tasks.allSatisfy { $0.state == "succeeded" }, "\(tasks)")
                let verify = try #require(tasks.first { $0.kind == "verify" }?.detail)
                #expect(verify.contains("2 sidecars rewritten from the catalog's facts"), "\(verify)")
                #expect(verify.contains("missing: " + path["removed"]!), "\(verify)")
                #expect(verify.contains("mutants (quarantined): " + path["swapped"]!), "\(verify)")
                // Sidecars back; the swapped copy aside and both lost ones repaired from the origin.
                #expect(FileManager.default.fileExists(atPath: vault("deleted") + ".dna"))
                #expect(FileManager.default.fileExists(atPath: dir.file("store-vault/.quarantine/" + path["swapped"]!)))
                for name in ["swapped", "removed"] {
                    #expect(try bytes(vault(name)) == bytes(origin(name)), "\(name) repaired")
                }
                let local = try Command.scmBackup(["verify", "--store", dir.file("store-vault")])
                #expect(
                    local.status == 0, "every copy on vault verifies by its sidecar: \(local.stdout)\(local.stderr)")
                for a in try site.json([Artifact].self, ["artifacts"]) {
                    #expect(
                        a.copies.map { "\($0.node) \($0.state)" }.sorted() == ["srv1 intact", "vault intact"],
                        "\(a.source)")
                }
                #expect(try site.admin(["mutants"]).stdout.contains("no mutants"))
                _ = goodSidecar

                // A mutant that cannot be moved aside (its quarantine folder is blocked) is still reported.
                let handle = try #require(FileHandle(forUpdatingAtPath: vault("deleted")))
                try handle.seek(toOffset: 50)
                let byte = try #require(try handle.read(upToCount: 1)?.first)
                try handle.seek(toOffset: 50)
                try handle.write(contentsOf: Data([byte ^ 0x01]))
                try handle.close()
                let blocked = dir.file(
                    "store-vault/.quarantine/" + (path["deleted"]! as NSString).deletingLastPathComponent)
                try FileManager.default.createDirectory(
                    atPath: (blocked as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data("not a folder".utf8).write(to: URL(fileURLWithPath: blocked))
                try ProcessSite.ok(try site.admin(["verify", "--node", "vault"]))
                _ = try site.settle()
                let mutants = try site.admin(["mutants"])
                #expect(mutants.status == 4, "\(mutants.stdout)\(mutants.stderr)")
                #expect(
                    mutants.stdout.contains(path["deleted"]!) && mutants.stdout.contains("cannot be quarantined"),
                    "\(mutants.stdout)")
                #expect(FileManager.default.fileExists(atPath: vault("deleted")), "left where it is")
            }
        }
    }

    /// A transfer may replace a copy the catalog holds as bad while the bad file is still in
    /// place (here an inventory, not a verify, saw its sidecar disagree): the receiver moves it
    /// to quarantine, never deletes it, and receives the good copy; without that word in the
    /// ticket it would refuse with `exists-different`.
    @Test(arguments: ["push", "pull"])
    func aTransferSetsACopyTheCatalogHoldsBadAsideAndReplacesIt(_ direction: String) async throws {
        try await blocking {
            try withTemporaryDirectory("replace-bad") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                try String(repeating: "conf\n", count: 300).write(
                    toFile: dir.file("conf/file.txt"), atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: [("conf", "folder", dir.file("conf"))]),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault")], transfers: true,
                    pairingExtra: ["vault": "direction = \"\(direction)\""])
                try site.startCoordinator()
                for name in ["srv1", "vault"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntil("both online") {
                    try site.admin(["nodes"]).stdout.components(separatedBy: "online ").count - 1 == 2
                }
                try site.backup("conf", on: "srv1")
                _ = try site.settle()
                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault"]))
                #expect(try site.settle().allSatisfy { $0.state == "succeeded" })
                let path = try #require(try site.json([Artifact].self, ["artifacts"]).first?.copies.first?.path)
                let vault = dir.file("store-vault/" + path)
                // Other bytes, with a sidecar that agrees with them; an inventory sees the mismatch.
                let other = Data("not the artifact\n".utf8)
                try other.write(to: URL(fileURLWithPath: vault))
                let sidecar = try String(contentsOfFile: vault + ".dna", encoding: .utf8)
                let digest = try Store.digest(vault, .sha256)
                let good = try #require(
                    sidecar.range(of: #"[0-9a-f]{64}"#, options: .regularExpression).map { String(sidecar[$0]) })
                try sidecar.replacingOccurrences(of: good, with: try #require(digest.sha256)).write(
                    toFile: vault + ".dna", atomically: true, encoding: .utf8)
                try ProcessSite.ok(try site.admin(["tasks", "submit", "--kind", "inventory", "--node", "vault"]))
                _ = try site.settle()
                let held = try site.json([Artifact].self, ["artifacts"]).first?.copies.first { $0.node == "vault" }
                #expect(held?.state == "mismatch")

                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault"]))
                let tasks = try site.settle()
                #expect(
                    tasks.first?.kind == "transfer" && tasks.first?.state == "succeeded",
                    "\(tasks.first.map { "\($0)" } ?? "-")")
                #expect(
                    try Data(contentsOf: URL(fileURLWithPath: vault))
                        == Data(contentsOf: URL(fileURLWithPath: dir.file("store-srv1/" + path))))
                #expect(
                    try Data(contentsOf: URL(fileURLWithPath: dir.file("store-vault/.quarantine/" + path))) == other,
                    "the bad file is quarantined, not deleted")
                let after = try site.json([Artifact].self, ["artifacts"]).first?.copies.first { $0.node == "vault" }
                #expect(after?.state == "intact")
            }
        }
    }
}
