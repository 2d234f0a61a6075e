import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A catalog lost with no self-backup, rebuilt from the agents' inventories: the same artifacts
/// and copies as before, a reference digest only from a receipt the hub's key verifies or from
/// the origin's own listing, and forged inventory entries left unconfirmed.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct CatalogRebuildTests {
    typealias Artifact = ProcessSite.ArtifactView

    @Test func aLostCatalogIsRebuiltFromTheStoresAndForgeriesStayUnconfirmed() async throws {
        try await blocking {
            try withTemporaryDirectory("catalog-rebuild") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                try "alice:x\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 3)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1", sources: [("conf", "folder", dir.file("conf")), ("env", "svn", dir.file("repo"))]),
                        .init("vault", roles: ["backup"]), .init("vault2", roles: ["backup"]),
                    ], pairings: [("srv1", "vault"), ("srv1", "vault2")], transfers: true)
                try site.startCoordinator()
                for name in ["srv1", "vault", "vault2"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntilOnline(3)
                for _ in 0..<2 {
                    let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                    #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
                    sleep(1)  // The next run's artifacts get other stamps.
                }
                let before = try site.json([Artifact].self, ["artifacts"])
                #expect(before.count == 4 && before.allSatisfy { $0.copies.count == 3 }, "\(before)")

                // vault2 forges two artifacts of srv1: one with no receipt, one with a real
                // receipt of another artifact beside it.
                let real = try #require(before.first { $0.source == "conf" }).copies[0].path
                let realFile = dir.file("store-vault2/" + real)
                for (stamp, receipt) in [("2026/01/01/000000", false), ("2026/01/02/000000", true)] {
                    let forged = "srv1/folder/conf/\(stamp)/conf-forged.tar.gz"
                    let file = dir.file("store-vault2/" + forged)
                    try FileManager.default.createDirectory(
                        atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try FileManager.default.copyItem(atPath: realFile, toPath: file)
                    var dna = try String(contentsOfFile: realFile + ".dna", encoding: .utf8)
                    dna = dna.replacingOccurrences(of: (real as NSString).lastPathComponent, with: "conf-forged.tar.gz")
                    try dna.write(toFile: file + ".dna", atomically: true, encoding: .utf8)
                    if receipt {
                        try FileManager.default.copyItem(atPath: realFile + ".dna.sig", toPath: file + ".dna.sig")
                    }
                }
                // srv1 lost one of its own: the receipts on the vaults still vouch for it.
                let lost = try #require(before.first { $0.source == "env" }).copies.first { $0.node == "srv1" }!.path
                for suffix in ["", ".dna", ".dna.sig"] {
                    try FileManager.default.removeItem(atPath: dir.file("store-srv1/" + lost + suffix))
                }

                // The hub loses its catalog; its witness stops it from starting afresh.
                site.stop("hub", SIGKILL)
                for file in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"]
                where FileManager.default.fileExists(atPath: dir.file(file)) {
                    try FileManager.default.removeItem(atPath: dir.file(file))
                }
                let refused = try Command.scmBackup(["coordinator", "--config", dir.file("site.toml")])
                #expect(refused.status != 0 && refused.stderr.contains("catalog rebuild"), "\(refused.stderr)")

                let rebuild = try Command.scmBackup(["catalog", "rebuild", "--config", dir.file("site.toml")])
                #expect(rebuild.status == 0, "\(rebuild.stdout)\(rebuild.stderr)")
                #expect(rebuild.stdout.contains("queued an inventory of each of 3 nodes: srv1, vault, vault2"))
                let twice = try Command.scmBackup(["catalog", "rebuild", "--config", dir.file("site.toml")])
                #expect(twice.status == 1 && twice.stderr.contains("catalog.sqlite' exists"), "\(twice.stderr)")
                try site.startCoordinator()
                let report = try Command.scmBackup([
                    "catalog", "rebuild", "--config", dir.file("site.toml"), "--report", "--wait", "90",
                ])
                #expect(report.status == 0, "\(report.stdout)\(report.stderr)")
                #expect(
                    report.stdout.contains("6 artifacts, 13 copies; 2 copies of 2 artifacts unconfirmed"),
                    "\(report.stdout)")
                #expect(report.stdout.contains("vault2: 6 copies, 2 unconfirmed"), "\(report.stdout)")

                let after = try site.json([Artifact].self, ["artifacts"])
                for artifact in before {
                    let path = artifact.copies[0].path
                    let found = try #require(after.first { $0.copies.contains { $0.path == path } }, "\(path)")
                    #expect(found.sha256 == artifact.sha256, "the same reference digest: \(artifact.fileName)")
                    var nodes = Set(artifact.copies.map(\.node))
                    if artifact.copies.contains(where: { $0.path == lost }) { nodes.remove("srv1") }
                    #expect(Set(found.copies.map(\.node)) == nodes, "\(artifact.fileName)")
                }
                let forged = after.filter { $0.fileName == "conf-forged.tar.gz" }
                #expect(forged.count == 2 && forged.allSatisfy { $0.sha256 == nil }, "unconfirmed: \(forged)")
                let status = try site.admin(["status"])
                #expect(status.stdout.contains("PAUSED site-wide"), "\(status.stdout)")
                let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(run.status == 0, "a run on the rebuilt catalog: \(run.stdout)\(run.stderr)")
            }
        }
    }
}
