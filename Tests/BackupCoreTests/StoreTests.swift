import BackupTesting
import Foundation
import Testing

@testable import BackupCore

struct StoreTests {
    static let node = "cms02"

    private func backup(_ dir: TemporaryDirectory, name: String = "tree", at date: Date = Date()) throws
        -> PublishedArtifact
    {
        if !FileManager.default.fileExists(atPath: dir.file("src/" + name)) {
            try FixtureTree.make(at: dir.file("src/" + name))
        }
        let store = try Store.openForWriting(dir.file("store"), now: date)
        return try store.backupFolder(dir.file("src/" + name), node: Self.node, name: name, now: date)
    }

    @Test func aBackupIsPublishedInTheLayoutWithItsSidecarPrivateModesAndLastLink() async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                let date = Date(timeIntervalSince1970: 1_795_770_782)  // 2026-11-27 09:13:02 UTC
                let published = try backup(dir, at: date)
                let folder = dir.file("store/cms02/folder/tree/2026/11/27/091302")
                #expect(published.path == folder + "/tree-\(published.dna.revision!).tar.gz")
                #expect(published.dna.revision?.count == 12)
                #expect(published.dna.created == date)
                #expect(
                    try FileSystem.entries(of: folder) == [
                        "tree-\(published.dna.revision!).tar.gz", "tree-\(published.dna.revision!).tar.gz.dna",
                    ])
                for path in [published.path, published.path + ".dna", dir.file("store/.scm-backup-store")] {
                    #expect(try FileSystem.linkStatus(path)!.st_mode & 0o777 == 0o600, "\(path)")
                }
                for path in [
                    folder, dir.file("store"), dir.file("store/cms02"), dir.file("store/cms02/folder/tree/2026"),
                ] {
                    #expect(try FileSystem.linkStatus(path)!.st_mode & 0o777 == 0o700, "\(path)")
                }
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("store/cms02/folder/tree/last"))
                        == "2026/11/27/091302")
                #expect(
                    try DNA.decode(try FileSystem.readSmallFile(published.path + ".dna"), path: "x") == published.dna)
                #expect(
                    try Store.digest(published.path, .both)
                        == ArtifactDigests(
                            size: published.dna.size, sha256: published.dna.sha256, md5: published.dna.md5))
            }
        }
    }

    @Test func twoBackupsInOneSecondGetTwoStampsAndAnUnchangedFolderKeepsItsRevision() async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                let date = Date(timeIntervalSince1970: 1_795_770_782)
                let first = try backup(dir, at: date)
                let second = try backup(dir, at: date)
                #expect(first.location.stamp == "2026/11/27/091302")
                #expect(second.location.stamp == "2026/11/27/091303")
                #expect(first.dna.revision == second.dna.revision)
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("store/cms02/folder/tree/last"))
                        == "2026/11/27/091303")
            }
        }
    }

    @Test func aFlippedByteMakesVerifyReportExactlyThatArtifact() async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                var published: [PublishedArtifact] = []
                for i in 0..<3 {
                    published.append(
                        try backup(dir, at: Date(timeIntervalSince1970: 1_795_770_782 + Double(i) * 86400)))
                }
                try flipByte(published[1].path, at: published[1].dna.size / 2)
                let store = Store(root: dir.file("store"))
                for deep in [false, true] {
                    let results = try store.scan().artifacts.map { store.verify($0, deep: deep) }
                    #expect(results.count == 3)
                    #expect(results.filter { $0.status != .intact }.map(\.artifact.path) == [published[1].path])
                    guard case .mutant(let reasons) = results[1].status else {
                        Issue.record("expected a mutant, got \(results[1].status)")
                        continue
                    }
                    #expect(reasons.first?.hasPrefix("sha256 ") == true)
                }
            }
        }
    }

    @Test func missingInvalidAndOrphanSidecarsAndPartialsAreReportedNotTrusted() async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                let a = try backup(dir, at: Date(timeIntervalSince1970: 1_795_770_782))
                let b = try backup(dir, at: Date(timeIntervalSince1970: 1_795_770_882))
                let c = try backup(dir, at: Date(timeIntervalSince1970: 1_795_770_982))
                try FileManager.default.removeItem(atPath: a.path + ".dna")
                try "{'dig': 'nonsense'}".write(toFile: b.path + ".dna", atomically: false, encoding: .utf8)
                try FileManager.default.removeItem(atPath: c.path)
                let partial = (b.path as NSString).deletingLastPathComponent + "/tree.tar.gz.partial"
                try "half".write(toFile: partial, atomically: false, encoding: .utf8)
                let store = Store(root: dir.file("store"))
                let scan = try store.scan()
                #expect(scan.artifacts.map(\.path) == [a.path, b.path])
                #expect(scan.orphanSidecars == [c.path + ".dna"])
                #expect(scan.partials == [partial])
                #expect(store.verify(scan.artifacts[0]).status == .missingSidecar)
                guard case .invalidSidecar(let why) = store.verify(scan.artifacts[1]).status else {
                    Issue.record("expected an invalid sidecar")
                    return
                }
                #expect(why.contains(b.path + ".dna"))
            }
        }
    }

    @Test func whatCrashedBackupsLeftIsRemovedAndAReceivingPartialKept() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let published = try backup(dir)
                let store = Store(root: dir.file("store"))
                let stampFolder = (published.path as NSString).deletingLastPathComponent
                let source = published.location.source
                // A crashed backup's archive in a stamp folder of its own, one beside a published
                // artifact, a received copy's partial, and staging folders of this node and another.
                let crashedFolder = (stampFolder as NSString).deletingLastPathComponent + "/235959"
                try FileManager.default.createDirectory(atPath: crashedFolder, withIntermediateDirectories: true)
                let crashed = crashedFolder + "/\(source).tar.gz.partial"
                let beside = stampFolder + "/\(source).tar.gz.partial"
                let receiving = published.path + ".partial"
                for file in [crashed, beside, receiving] { try Data("x".utf8).write(to: URL(fileURLWithPath: file)) }
                for folder in ["\(Self.node)-folder-tree-1234abcd", "other-folder-tree-99999999"] {
                    try FileManager.default.createDirectory(
                        atPath: dir.file("store/.staging/" + folder), withIntermediateDirectories: true)
                }
                let removed = try store.removeCrashedBackupWork(node: Self.node)
                #expect(
                    Set(removed) == [crashed, beside, dir.file("store/.staging/\(Self.node)-folder-tree-1234abcd")])
                #expect(!FileManager.default.fileExists(atPath: crashedFolder), "its empty stamp folder went with it")
                #expect(FileManager.default.fileExists(atPath: published.path), "the published artifact stays")
                #expect(FileManager.default.fileExists(atPath: receiving), "a receiving partial is kept to resume")
                #expect(FileManager.default.fileExists(atPath: dir.file("store/.staging/other-folder-tree-99999999")))
            }
        }
    }

    @Test func aLegacyTreeIsReadAsItIs() async throws {
        try await blocking {
            try withTemporaryDirectory("legacy") { dir in
                // /var/scm/backup/cms02/repos/env/2008/08/14/174749/env-1234.tar.gz with an MD5 dict.
                let folder = dir.file("backup/cms02/repos/env/2008/08/14/174749")
                try FixtureTree.make(at: dir.file("src/env"))
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let artifact = folder + "/env-1234.tar.gz"
                #expect(try Command.run("tar", ["-czf", artifact, "-C", dir.file("src"), "env"]).status == 0)
                let digests = try Store.digest(artifact, .md5)
                try "{'dig': '\(digests.md5!)', 'size': \(digests.size)L}\n".write(
                    toFile: artifact + ".dna", atomically: false, encoding: .utf8)
                #expect(symlink("2008/08/14/174749", dir.file("backup/cms02/repos/env/last")) == 0)

                let store = Store(root: dir.file("backup"))
                let scan = try store.scan()
                #expect(scan.artifacts.count == 1)
                let location = try #require(scan.artifacts[0].location)
                #expect(location.origin == "cms02")
                #expect(SourceKind(storeName: location.kind) == .svn)
                #expect(location.revision == "1234")
                #expect(store.verify(scan.artifacts[0], deep: true).status == .intact)
                try flipByte(artifact, at: 100)
                guard case .mutant(let reasons) = store.verify(scan.artifacts[0]).status else {
                    Issue.record("expected a mutant")
                    return
                }
                #expect(reasons.first?.hasPrefix("md5 ") == true)
                // Writing into it needs adoption: it has content and no marker.
                let error = #expect(throws: BackupError.self) { try Store.openForWriting(dir.file("backup")) }
                #expect(error?.code == .storeMarker)
                #expect(error?.message.contains("init-store") == true)
                try store.adopt()
                _ = try Store.openForWriting(dir.file("backup"))
            }
        }
    }

    @Test func aStoreWithAnotherIdIsRefused() async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                _ = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try Store.openForWriting(dir.file("store"), expectedID: "other")
                }
                #expect(error?.message.contains("is the right disk mounted") == true)
            }
        }
    }

    @Test(arguments: ["missing", "file"])
    func aBadSourcePathIsAnErrorNamingItAndLeavesNothing(_ what: String) async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                let source = dir.file("nope")
                if what == "file" { try "x".write(toFile: source, atomically: false, encoding: .utf8) }
                let store = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) { try store.backupFolder(source, node: "n", name: "s") }
                #expect(error?.code == .sourceInvalid)
                #expect(error?.message.contains(source) == true)
                #expect(
                    Set(try FileSystem.entries(of: dir.file("store"))) == [StoreMarker.fileName, TicketLedger.fileName])
            }
        }
    }

    @Test(arguments: ["", "../x", "a/b", ".hidden", "last", String(repeating: "x", count: 101)])
    func unusableNamesAreRefused(_ name: String) async throws {
        try await blocking {
            try withTemporaryDirectory("store") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("src"), withIntermediateDirectories: true)
                let store = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try store.backupFolder(dir.file("src"), node: "n", name: name)
                }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message.contains("'\(name)'") == true)
            }
        }
    }

    @Test func collapsedLastLinksAreRepairedAndForeignContentIsKeptAside() async throws {
        try await blocking {
            try withTemporaryDirectory("lastlinks") { dir in
                let a = try backup(dir, name: "alpha", at: Date(timeIntervalSince1970: 1_795_770_782))
                let a2 = try backup(dir, name: "alpha", at: Date(timeIntervalSince1970: 1_795_857_182))
                let b = try backup(dir, name: "beta", at: Date(timeIntervalSince1970: 1_795_770_782))
                let gamma = try backup(dir, name: "gamma", at: Date(timeIntervalSince1970: 1_795_770_782))
                let fm = FileManager.default
                // alpha: last collapsed into a copy of the older stamp; beta: collapsed with an extra file;
                // gamma: no last at all.
                let alphaLast = dir.file("store/cms02/folder/alpha/last")
                try fm.removeItem(atPath: alphaLast)
                try fm.copyItem(atPath: (a.path as NSString).deletingLastPathComponent, toPath: alphaLast)
                let betaLast = dir.file("store/cms02/folder/beta/last")
                try fm.removeItem(atPath: betaLast)
                try fm.copyItem(atPath: (b.path as NSString).deletingLastPathComponent, toPath: betaLast)
                try "notes\n".write(toFile: betaLast + "/NOTES", atomically: false, encoding: .utf8)
                try fm.removeItem(atPath: dir.file("store/cms02/folder/gamma/last"))

                let store = Store(root: dir.file("store"))
                #expect(try store.scan().collapsedLastLinks.count == 2)
                #expect(
                    try store.repairLastLinks(dryRun: true).map(\.problem) == ["collapsed", "collapsed", "missing"])
                #expect(try store.scan().collapsedLastLinks.count == 2, "a dry run changes nothing")
                let repairs = try store.repairLastLinks()
                #expect(repairs.map(\.problem) == ["collapsed", "collapsed", "missing"])
                #expect(try fm.destinationOfSymbolicLink(atPath: alphaLast) == a2.location.stamp)
                #expect(try fm.destinationOfSymbolicLink(atPath: betaLast) == b.location.stamp)
                #expect(
                    try fm.destinationOfSymbolicLink(atPath: dir.file("store/cms02/folder/gamma/last"))
                        == gamma.location.stamp)
                let aside = try #require(repairs[1].keptAside)
                #expect(fm.fileExists(atPath: aside + "/NOTES"))
                #expect(repairs[0].keptAside == nil)
                #expect(try store.repairLastLinks().isEmpty, "a second run finds nothing to do")
            }
        }
    }
}
