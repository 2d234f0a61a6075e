import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A hub never starts afresh by accident (issue 11, W9): a catalog that is missing where one
/// existed, empty, damaged or another site's stops the coordinator with a message naming the
/// file and the remedy; the intact catalog put back starts it again.
@Suite(.timeLimit(.minutes(2)))
struct CatalogSafetyTests {
    @Test func aMissingEmptyDamagedOrForeignCatalogStopsTheCoordinator() async throws {
        try await blocking {
            try withTemporaryDirectory("catalog-safety") { dir in
                let site = try ProcessSite(dir, nodes: [.init("srv1")])
                try site.startCoordinator()
                site.stop("hub")
                let catalog = dir.file("catalog.sqlite")
                let witness = catalog + ".epoch"
                #expect(FileManager.default.fileExists(atPath: witness), "the hub notes that it made a catalog")
                // The intact catalog as it is on disk: its WAL too, if the hub left one (a copy of the
                // main file alone may lack the newest transactions, the epoch among them).
                try FileManager.default.copyItem(atPath: catalog, toPath: dir.file("good.sqlite"))
                let goodWAL =
                    FileManager.default.fileExists(atPath: catalog + "-wal")
                    ? try Data(contentsOf: URL(fileURLWithPath: catalog + "-wal")) : nil
                func start() throws -> CommandResult {
                    try Command.scmBackup([
                        "coordinator", "--config", dir.file("site.toml"), "--port-file", dir.file("port-check"),
                    ])
                }
                func put(_ bytes: Data?) throws {
                    for f in [catalog, catalog + "-wal", catalog + "-shm"]
                    where FileManager.default.fileExists(atPath: f) {
                        try FileManager.default.removeItem(atPath: f)
                    }
                    if let bytes { try bytes.write(to: URL(fileURLWithPath: catalog)) }
                }
                let good = try Data(contentsOf: URL(fileURLWithPath: dir.file("good.sqlite")))

                try put(nil)
                var r = try start()
                #expect(r.status != 0)
                #expect(r.stderr.contains("The catalog '\(catalog)' is missing, but this hub had one"), "\(r.stderr)")
                #expect(r.stderr.contains("catalog rebuild") && r.stderr.contains("remove '\(witness)'"))
                #expect(!FileManager.default.fileExists(atPath: catalog), "no empty catalog was made")

                try put(Data())
                r = try start()
                #expect(r.status != 0 && r.stderr.contains("is empty (0 bytes)"), "\(r.stderr)")

                // The schema page overwritten.
                var damaged = good
                damaged.replaceSubrange(
                    100..<min(4096, damaged.count), with: Data(repeating: 0x5A, count: min(4096, damaged.count) - 100))
                try put(damaged)
                r = try start()
                #expect(r.status != 0 && r.stderr.contains("The catalog '\(catalog)' cannot be used"), "\(r.stderr)")

                // Another hub's catalog (another epoch) in its place.
                let other = try ProcessSite(try TemporaryDirectory("catalog-other"), nodes: [.init("srv1")])
                try other.startCoordinator()
                other.stop("hub")
                try put(try Data(contentsOf: URL(fileURLWithPath: other.dir.file("catalog.sqlite"))))
                r = try start()
                #expect(r.status != 0 && r.stderr.contains("not this hub's"), "\(r.stderr)")

                try put(good)
                if let goodWAL { try goodWAL.write(to: URL(fileURLWithPath: catalog + "-wal")) }
                do { try site.startCoordinator() } catch {
                    Issue.record("\(try String(contentsOfFile: dir.file("coordinator.log"), encoding: .utf8))")
                    throw error
                }
                #expect(try site.admin(["nodes"]).status == 0)
            }
        }
    }
}
