import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

/// The hub's self-backup: a whole snapshot of its catalog, site file and public keys, with a
/// manifest that catches any change, the newest `keep` kept, and no private key in it.
@Suite(.timeLimit(.minutes(3)))
struct SelfBackupTests {
    func coordinator(_ harness: CoordinatorHarness, clock: ManualClock, site: String? = nil) throws -> Coordinator {
        var config = harness.configuration
        config.ticketKey = harness.dir.file("ca/ticket-signing.key")
        config.siteFile = site
        config.selfBackup = SelfBackupSettings(folder: harness.dir.file("self-backup"))
        return try Coordinator(
            configuration: config, catalog: try Catalog(path: config.database), wallClock: clock, clock: clock)
    }

    @Test func aSnapshotHoldsTheCatalogTheSiteFileAndOnlyPublicKeys() async throws {
        try await withTemporaryDirectory("self-backup") { dir in
            let harness = try CoordinatorHarness(dir)
            let site = dir.file("site.toml")
            try "# the site file, as the hub read it\n".write(toFile: site, atomically: true, encoding: .utf8)
            let clock = ManualClock()
            let hub = try coordinator(harness, clock: clock, site: site)
            try await hub.catalog.record(
                ArtifactReport(complete: false, copies: [CatalogTrustTests.copy(CatalogTrustTests.good)]),
                node: "srv1", authority: .originBackup(sources: ["env"]), now: clock.currentDate)
            let selfBackup = try #require(hub.selfBackup)
            let (folder, manifest) = try await selfBackup.write()
            #expect(folder.hasSuffix("/" + HubSnapshotManifest.folderName(clock.currentDate)))
            try manifest.check(in: folder)
            #expect(manifest.epoch == (try await hub.catalog.epoch()))
            #expect(manifest.coordinator == "hub")
            var expected: Set = [
                "catalog.sqlite", "site.toml", "keys/ca.pem", "keys/ticket-signing.pub", "keys/purge-signing.pub",
            ]
            if FileManager.default.fileExists(atPath: dir.file("ca/revoked.json")) {
                expected.insert("keys/revoked.json")
            }
            #expect(Set(manifest.files.map(\.name)) == expected)
            // Public halves only, readable by the group, not by others.
            let ticket = try Ed25519PEM.readPublicKey(folder + "/keys/ticket-signing.pub")
            #expect(
                ticket.rawRepresentation
                    == (try Ed25519PEM.readPrivateKey(dir.file("ca/ticket-signing.key")).publicKey.rawRepresentation))
            for file in manifest.files {
                let text = String(
                    decoding: try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file.name)), as: UTF8.self)
                #expect(!text.contains("PRIVATE KEY"), "\(file.name)")
                let mode = try #require(try FileSystem.linkStatus(folder + "/" + file.name)).st_mode & 0o777
                #expect(mode == 0o640, "\(file.name)")
            }
            #expect(try #require(try FileSystem.linkStatus(folder)).st_mode & 0o777 == 0o750)
            // The copy is a catalog of its own (opening it makes it 0600) with the same artifacts and epoch.
            let copy = try Catalog(path: folder + "/catalog.sqlite")
            #expect(try await copy.artifacts().map(\.stamp) == [CatalogTrustTests.copy(CatalogTrustTests.good).stamp])
            #expect(try await copy.epoch() == manifest.epoch)
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: folder + "/site.toml"))
                    == Data(contentsOf: URL(fileURLWithPath: site)))
        }
    }

    @Test func theNewestAreKeptAndAChangedFileIsNamed() async throws {
        try await withTemporaryDirectory("self-backup-keep") { dir in
            let harness = try CoordinatorHarness(dir)
            let clock = ManualClock()
            let selfBackup = try #require(try coordinator(harness, clock: clock).selfBackup)
            var folders: [String] = []
            for _ in 0..<3 {
                folders.append(try await selfBackup.write().folder)
                clock.advance(by: .seconds(3600))
            }
            let root = dir.file("self-backup")
            #expect(try SelfBackup.snapshots(in: root) == folders.suffix(2).map { ($0 as NSString).lastPathComponent })
            // A byte of the catalog changed after the fact: the check names the file and both digests.
            let manifest = try WireJSON.decoder().decode(
                HubSnapshotManifest.self,
                from: Data(contentsOf: URL(fileURLWithPath: folders[2] + "/" + HubSnapshotManifest.fileName)))
            let handle = try #require(FileHandle(forUpdatingAtPath: folders[2] + "/catalog.sqlite"))
            try handle.seek(toOffset: 200)
            try handle.write(contentsOf: Data([0x5a]))
            try handle.close()
            let error = #expect(throws: BackupError.self) { try manifest.check(in: folders[2]) }
            #expect(error?.message.contains("catalog.sqlite") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("the snapshot's manifest says") == true)
            // A name that leaves the folder is refused before anything is read.
            var escaping = manifest
            escaping.files.append(.init(name: "../../etc/passwd", size: 1, sha256: ""))
            let outside = #expect(throws: BackupError.self) { try escaping.check(in: folders[1]) }
            #expect(outside?.message.contains("outside it") == true)
        }
    }

    @Test func aFolderThatCannotBeWrittenIsNamedAndNothingIsLeft() async throws {
        try await withTemporaryDirectory("self-backup-bad") { dir in
            let harness = try CoordinatorHarness(dir)
            try "a file, not a folder".write(toFile: dir.file("self-backup"), atomically: true, encoding: .utf8)
            let selfBackup = try #require(try coordinator(harness, clock: ManualClock()).selfBackup)
            let error = await #expect(throws: BackupError.self) { try await selfBackup.write() }
            #expect(error?.message.contains("'\(dir.file("self-backup"))' (self_backup in [coordinator])") == true)
            #expect(try String(contentsOfFile: dir.file("self-backup"), encoding: .utf8) == "a file, not a folder")
        }
    }

    @Test func aRestoredSiteFileKeepsThisHubsCoordinatorTableAndTheSnapshotsSite() {
        let bootstrap = "# the new hub\n[coordinator]\nlisten = \"0.0.0.0:8443\"\ndatabase = \"/new/catalog.sqlite\"\n"
        let snapshot = """
            [coordinator]
            listen = "10.0.0.1:8443"
            database = "/old/catalog.sqlite"

            [schedule]
            default = "0 2 * * *"

            [nodes.srv1]
            roles = ["server"]

            [[pairings]]
            server = "srv1"
            backup = "vault"

            """
        let merged = HubRestore.mergeSiteFile(bootstrap: bootstrap, snapshot: snapshot)
        #expect(merged.contains("database = \"/new/catalog.sqlite\"") && !merged.contains("/old/catalog.sqlite"))
        #expect(!merged.contains("10.0.0.1"))
        for table in ["[schedule]", "[nodes.srv1]", "[[pairings]]", "backup = \"vault\""] {
            #expect(merged.contains(table), "\(table)")
        }
        #expect(merged.components(separatedBy: "[coordinator]").count == 2, "one [coordinator] table")
    }
}
