import BackupTesting
import Foundation
import Testing

@testable import BackupCore

@Suite(.timeLimit(.minutes(5)))
struct SubversionTests {
    @Test func aRepositoryCommittedToDuringTheBackupStillGivesAnArtifactThatVerifiesAndRestores() async throws {
        // svnadmin, svn commits and the archive block between the awaits.
        try await onThreadOfItsOwn { try await committedToDuringTheBackup() }
    }

    private func committedToDuringTheBackup() async throws {
        try await withTemporaryDirectory("svn-live") { dir in
            let repo = dir.file("repo")
            try SourceFixtures.svnRepository(at: repo, commits: 2)
            // A big file makes the hotcopy take a moment while commits keep landing.
            var rng = SeededGenerator(seed: 3)
            let big = dir.file("big.bin")
            try Data(rng.bytes(4_000_000)).write(
                to: URL(fileURLWithPath: big))
            #expect(try Command.run("svnmucc", ["-m", "big", "put", big, "file://\(repo)/big.bin"]).status == 0)
            // Commits land on a thread of their own while the backups run on this one.
            async let committed: Int = blocking {
                var last = 0
                for i in 0..<30 {
                    last = try SourceFixtures.svnCommit(repo, file: "live\(i % 4).txt", text: "commit \(i)\n")
                }
                return last
            }
            let store = try Store.openForWriting(dir.file("store"))
            var published: [PublishedArtifact] = []
            for _ in 0..<3 {
                published.append(
                    try store.backup(
                        SourceSpec(kind: .svn, name: "repo", path: repo, verifySnapshot: true), node: "srv"))
            }
            let youngest = try await committed
            #expect(youngest == 33)
            let revisions = published.compactMap { $0.dna.revision.flatMap(Int.init) }
            #expect(revisions == revisions.sorted(), "revisions never go backwards: \(revisions)")
            #expect(published.allSatisfy { $0.dna.regressions == nil })
            for (i, artifact) in try store.scan().artifacts.enumerated() {
                #expect(store.verify(artifact, deep: true).status == .intact)
                let report = try store.recover(artifact, to: dir.file("restored\(i)"))
                let restoredYoungest = try Command.run("svnlook", ["youngest", report.target]).stdout
                #expect(restoredYoungest == "\(artifact.location!.revision!)\n")
            }
        }
    }

    @Test func aTracEnvironmentAndItsRepositoryAreBackedUpAsOneConsistentPair() async throws {
        try await blocking {
            try withTemporaryDirectory("pair") { dir in
                let repo = dir.file("repos/project")
                try FileManager.default.createDirectory(atPath: dir.file("repos"), withIntermediateDirectories: true)
                try SourceFixtures.svnRepository(at: repo, commits: 3)
                let env = dir.file("tracs/project")
                try FileManager.default.createDirectory(atPath: dir.file("tracs"), withIntermediateDirectories: true)
                try SourceFixtures.tracEnvironment(at: env, repository: repo)
                let store = try Store.openForWriting(dir.file("store"))
                let tools = SourceFixtures.tools
                let pair = try store.backupPair(
                    svn: SourceSpec(kind: .svn, name: "project", path: repo, tools: tools),
                    trac: SourceSpec(kind: .trac, name: "project", path: env, tools: tools), node: "srv")
                #expect(pair.svn.dna.pairedWith == pair.trac.location.fileName)
                #expect(pair.trac.dna.pairedWith == "project-3.tar.gz")
                // Trac's cache of the repository says 3 revisions too: the two copies agree.
                let scan = try store.scan()
                #expect(scan.artifacts.count == 2)

                // Lose both; recover the repository first, then the environment, whose link is resynced.
                try FileManager.default.removeItem(atPath: repo)
                try FileManager.default.removeItem(atPath: env)
                // Ambiguous without a kind.
                #expect(throws: BackupError.self) { try store.findArtifact(name: "project") }
                let svnOnly = try store.findArtifact(name: "project", kind: "svn")
                let tracOnly = try store.findArtifact(name: "project", kind: "trac")
                _ = try store.recover(svnOnly, to: repo, tools: tools)
                _ = try store.recover(tracOnly, to: env, tools: tools)
                let cached = try SourceFixtures.sqlite(
                    env + "/db/trac.db", "SELECT value FROM repository WHERE name = 'youngest_rev';")
                #expect(cached == "3\n")
                #expect(try SourceFixtures.sqlite(env + "/db/trac.db", "SELECT count(*) FROM revision;") == "3\n")
            }
        }
    }
}
