import BackupTesting
import Foundation
import Testing

@testable import BackupCore

struct RecoveryTests {
    @Test(arguments: ["backwards", "uuid"])
    func anSvnRegressionIsFlagged(_ case_: String) async throws {
        try await blocking {
            try withTemporaryDirectory("svn-regression") { dir in
                let repo = dir.file("repo")
                try SourceFixtures.svnRepository(at: repo, commits: 5)
                let store = try Store.openForWriting(dir.file("store"))
                let spec = SourceSpec(kind: .svn, name: "repo", path: repo)
                let first = try store.backup(spec, node: "srv", now: RetentionTests.date(1))
                #expect(first.dna.regressions == nil)
                if case_ == "backwards" {
                    // The repository is replaced by an older copy with the same UUID.
                    let uuid = try Command.run("svnlook", ["uuid", repo]).stdout.trimmingCharacters(
                        in: .whitespacesAndNewlines)
                    try FileManager.default.removeItem(atPath: repo)
                    try SourceFixtures.svnRepository(at: repo, commits: 2)
                    #expect(try Command.run("svnadmin", ["setuuid", repo, uuid]).status == 0)
                } else {
                    #expect(try Command.run("svnadmin", ["setuuid", repo]).status == 0)
                }
                let second = try store.backup(spec, node: "srv", now: RetentionTests.date(0))
                let reasons = try #require(second.dna.regressions)
                #expect(
                    reasons.first?.hasPrefix(
                        case_ == "backwards" ? "revision went backwards from 5 to 2" : "repository UUID changed")
                        == true,
                    "\(reasons)")
                #expect(
                    try store.findArtifact(name: "repo").path == first.path, "recover prefers the last good artifact")
            }
        }
    }

    @Test func aHostileArtifactIsRefusedByRecoverAndNothingEscapes() async throws {
        try await blocking {
            try withTemporaryDirectory("hostile-recover") { dir in
                // A legacy-looking artifact whose tar climbs out of its target, with a matching DNA.
                let folder = dir.file("store/srv/folder/evil/2026/11/27/090000")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let artifact = folder + "/evil-1.tar.gz"
                let corpus = Paths.tarCorpus + "/hostile-dotdot.tar"
                #expect(try Command.run("sh", ["-c", "gzip -c '\(corpus)' > '\(artifact)'"]).status == 0)
                let digests = try Store.digest(artifact, .both)
                var dna = DNA(
                    artifact: "evil-1.tar.gz", digests: digests, origin: "srv", kind: "folder", source: "evil",
                    revision: "1",
                    created: Date())
                dna.tarSize = nil
                try FileSystem.writeAtomically(try dna.encoded(), to: artifact + ".dna")
                let store = Store(root: dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try store.recover(try store.findArtifact(name: "evil"), to: dir.file("out/evil"))
                }
                #expect(error != nil)
                #expect(!FileManager.default.fileExists(atPath: dir.file("escape")))
                #expect(!FileManager.default.fileExists(atPath: dir.file("store/srv/folder/escape")))
                #expect(!FileManager.default.fileExists(atPath: dir.file("out/evil")))
            }
        }
    }

    @Test func recoverRefusesAMutantAndATargetItCannotWrite() async throws {
        try await blocking {
            try withTemporaryDirectory("recover-refusals") { dir in
                try FixtureTree.make(at: dir.file("src"))
                let store = try Store.openForWriting(dir.file("store"))
                let published = try store.backupFolder(dir.file("src"), node: "n", name: "conf")
                let missingParent = #expect(throws: BackupError.self) {
                    try store.recover(try store.findArtifact(name: "conf"), to: dir.file("no/such/place/conf"))
                }
                #expect(missingParent?.message.contains(dir.file("no/such/place")) == true)
                try flipByte(published.path, at: 50)
                let mutant = #expect(throws: BackupError.self) {
                    try store.recover(try store.findArtifact(name: "conf"), to: dir.file("conf"))
                }
                #expect(mutant?.code == .refused)
                #expect(mutant?.message.contains("mutant") == true)
                #expect(!FileManager.default.fileExists(atPath: dir.file("conf")))
            }
        }
    }

    @Test func configFilesAreComparedAndReplacedOnlyWhenAskedKeepingTheLiveOne() async throws {
        try await blocking {
            try withTemporaryDirectory("recover-config") { dir in
                let live = dir.file("apache")
                try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
                try "alice:hash1\nbob:hash2\n".write(toFile: live + "/users.conf", atomically: true, encoding: .utf8)
                try "[/]\n* = r\n".write(toFile: live + "/authz.conf", atomically: true, encoding: .utf8)
                chmod(live + "/users.conf", 0o640)
                let store = try Store.openForWriting(dir.file("store"))
                _ = try store.backupFolder(live, node: "n", name: "apache-confdir")
                // Someone edits users.conf badly and deletes authz.conf.
                try "alice:hash1\n".write(toFile: live + "/users.conf", atomically: true, encoding: .utf8)
                try FileManager.default.removeItem(atPath: live + "/authz.conf")

                try store.withConfigChanges(name: "apache-confdir", liveFolder: live) { _, changes in
                    let byName = Dictionary(uniqueKeysWithValues: changes.map { ($0.name, $0) })
                    #expect(byName["users.conf"]?.state == .changed)
                    #expect(byName["users.conf"]?.diff.contains("+bob:hash2") == true)
                    #expect(byName["authz.conf"]?.state == .missingLive)
                    let saved = try #require(try store.applyConfigChange(byName["users.conf"]!))
                    #expect(try String(contentsOfFile: saved, encoding: .utf8) == "alice:hash1\n")
                }
                #expect(try String(contentsOfFile: live + "/users.conf", encoding: .utf8) == "alice:hash1\nbob:hash2\n")
                #expect(
                    try FileSystem.linkStatus(live + "/users.conf")!.st_mode & 0o777 == 0o640,
                    "the backup's mode is restored")
                #expect(!FileManager.default.fileExists(atPath: live + "/authz.conf"), "not applied, not written")
                try store.withConfigChanges(name: "apache-confdir", liveFolder: live, only: ["users.conf"]) {
                    _, changes in
                    #expect(changes.map(\.state) == [.identical])
                }
            }
        }
    }
}

/// Failures around the source and the target, with real tools and a real read-only mount.
@Suite(.serialized)
struct RecoveryFailureTests {
    @Test func aRepositoryDeletedMidBackupIsNamedAndLeavesNothing() async throws {
        try await blocking {
            try withTemporaryDirectory("svn-deleted") { dir in
                let repo = dir.file("repo")
                try SourceFixtures.svnRepository(at: repo, commits: 2)
                // The real svnadmin, started after the repository vanished under it.
                let wrapper = dir.file("svnadmin-deleting")
                try "#!/bin/sh\n[ \"$1\" = hotcopy ] && rm -rf '\(repo)'\nexec svnadmin \"$@\"\n".write(
                    toFile: wrapper, atomically: true, encoding: .utf8)
                chmod(wrapper, 0o755)
                var tools = SourceTools()
                tools.svnadmin.program = wrapper
                let store = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try store.backup(SourceSpec(kind: .svn, name: "repo", path: repo, tools: tools), node: "n")
                }
                #expect(error?.code == .sourceInvalid)
                #expect(
                    error?.message.contains("'\(repo)'") == true && error?.message.contains("does not exist") == true,
                    "\(error?.message ?? "")")
                #expect(try store.scan().artifacts.isEmpty)
                #expect(try store.scan().partials.isEmpty)
                #expect(try FileSystem.entries(of: dir.file("store/.staging")).isEmpty)
            }
        }
    }

    @Test func aTargetOnAReadOnlyFileSystemIsRefusedNamingIt() async throws {
        try await blocking {
            try withTemporaryDirectory("recover-ro") { dir in
                try FixtureTree.make(at: dir.file("src"))
                let store = try Store.openForWriting(dir.file("store"))
                _ = try store.backupFolder(dir.file("src"), node: "n", name: "conf")
                let ro = dir.file("ro")
                try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
                let mount = try Command.run("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro])
                try #require(mount.status == 0, "the test mounts a read-only tmpfs (run as root): \(mount.stderr)")
                // Unmount even when an expectation failed; a mount left over would die with the machine.
                defer { _ = try? Command.run("umount", [ro]) }
                let error = #expect(throws: BackupError.self) {
                    try store.recover(try store.findArtifact(name: "conf"), to: ro + "/conf")
                }
                #expect(error?.code == .refused)
                #expect(error?.message.contains("'\(ro)'") == true)
                #expect(error?.message.contains("read-only") == true)
            }
        }
    }
}

/// What a folder recovery's diff hides unless --show-secrets.
struct SecretMaskTests {
    @Test func credentialLinesAreMaskedAndTheRestIsKept() {
        let diff = """
            --- /etc/svn/users.conf\t2026-12-04
            +++ /tmp/x/users.conf\t2026-12-04
            @@ -1,3 +1,3 @@
             [users]
            -harry = typo
            +harry = hunter2
             # sally = old comment
            """
        let (text, masked) = SecretMask.apply(toDiff: diff, file: "users.conf")
        #expect(masked == 2)
        #expect(text.contains("-harry = ********") && text.contains("+harry = ********"))
        #expect(!text.contains("hunter2") && !text.contains("typo"))
        #expect(text.contains(" [users]") && text.contains("# sally = old comment") && text.contains("+++ /tmp/x"))
        let conf = """
            @@ -1,4 +1,4 @@
            -ServerName svn.example.org:443
            +db_password = s3cret
            +alice:$apr1$abc$def
             AuthType Basic
            +LogLevel = warn
            """
        let (other, count) = SecretMask.apply(toDiff: conf, file: "site.conf")
        #expect(count == 2, "\(other)")
        #expect(!other.contains("s3cret") && !other.contains("$apr1$"))
        #expect(other.contains("ServerName svn.example.org:443") && other.contains("+LogLevel = warn"))
    }

    @Test func aFileChangedSinceTheComparisonIsRefusedAndNothingIsReplaced() throws {
        try withTemporaryDirectory("config-apply") { dir in
            let live = dir.file("live")
            try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
            try "a = 1\n".write(toFile: live + "/a.conf", atomically: true, encoding: .utf8)
            try "b = 1\n".write(toFile: live + "/b.conf", atomically: true, encoding: .utf8)
            let s = try Store.openForWriting(dir.file("store"))
            _ = try s.backupFolder(live, node: "srv1", name: "conf")
            try "a = 2\n".write(toFile: live + "/a.conf", atomically: true, encoding: .utf8)
            try "b = 2\n".write(toFile: live + "/b.conf", atomically: true, encoding: .utf8)
            let shown = try s.withConfigChanges(name: "conf", liveFolder: live) { _, changes in changes }
            #expect(shown.filter { $0.state == .changed }.count == 2)
            // b.conf changes again after it was shown: the apply of both is refused, a.conf untouched.
            try "b = 3\n".write(toFile: live + "/b.conf", atomically: true, encoding: .utf8)
            #expect(throws: BackupError.self) {
                try s.withConfigChanges(name: "conf", liveFolder: live) { _, changes in
                    try s.applyConfigChanges(
                        changes, wanted: shown.map { ($0.name, $0.liveSha256, $0.backupSha256) })
                }
            }
            #expect(try String(contentsOfFile: live + "/a.conf", encoding: .utf8) == "a = 2\n")
            #expect(try String(contentsOfFile: live + "/b.conf", encoding: .utf8) == "b = 3\n")
        }
    }
}
