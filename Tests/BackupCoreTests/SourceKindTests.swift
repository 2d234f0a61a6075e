import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// The conformance suite every source kind passes with its real tool: backup → verify →
/// recover → the kind's own tool accepts the result and its content equals the original.
@Suite(.timeLimit(.minutes(5)))
struct SourceKindTests {
    /// Makes a live source of `kind` under `dir`; returns its path and a fingerprint of its content.
    static func makeSource(_ kind: SourceKind, in dir: TemporaryDirectory) throws -> (String, () throws -> String) {
        switch kind {
        case .svn:
            let path = dir.file("live/repo")
            try FileManager.default.createDirectory(atPath: dir.file("live"), withIntermediateDirectories: true)
            try SourceFixtures.svnRepository(at: path, commits: 4)
            return (path, { try fingerprintSvn(path) })
        case .git:
            let path = dir.file("live/repo.git")
            try FileManager.default.createDirectory(atPath: dir.file("live"), withIntermediateDirectories: true)
            try SourceFixtures.gitRepository(at: path)
            return (
                path,
                {
                    try SourceFixtures.gitRefs(path)
                        + (try String(contentsOfFile: path + "/hooks/post-receive", encoding: .utf8))
                }
            )
        case .trac:
            let path = dir.file("live/env")
            try FileManager.default.createDirectory(atPath: dir.file("live"), withIntermediateDirectories: true)
            try SourceFixtures.tracEnvironment(at: path)
            return (
                path,
                {
                    try SourceFixtures.sqlite(
                        path + "/db/trac.db", "SELECT name, text FROM wiki WHERE name = 'BackupTest';")
                }
            )
        case .sqlite:
            let path = dir.file("live/data.db")
            try FileManager.default.createDirectory(atPath: dir.file("live"), withIntermediateDirectories: true)
            try SourceFixtures.sqliteDatabase(at: path, rows: 500)
            return (path, { try SourceFixtures.sqlite(path, "SELECT count(*), sum(length(v)) FROM t;") })
        case .folder:
            let path = dir.file("live/conf")
            try FixtureTree.make(at: path)
            return (
                path, { try TreeComparison.differences(path, path).joined() + "\(try FileSystem.entries(of: path))" }
            )
        }
    }

    static func fingerprintSvn(_ path: String) throws -> String {
        let uuid = try Command.run("svnlook", ["uuid", path]).stdout
        let youngest = try Command.run("svnlook", ["youngest", path]).stdout
        let tree = try Command.run("svnlook", ["tree", "--full-paths", path]).stdout
        let file = try Command.run("svnlook", ["cat", path, "file1.txt"]).stdout
        return uuid + youngest + tree + file
    }

    @Test(arguments: SourceKind.allCases)
    func backupVerifyRecoverRoundTrip(kind: SourceKind) async throws {
        try await blocking {
            try withTemporaryDirectory("kind-\(kind.rawValue)") { dir in
                let (path, fingerprint) = try Self.makeSource(kind, in: dir)
                let before = try fingerprint()
                let store = try Store.openForWriting(dir.file("store"))
                let spec = SourceSpec(
                    kind: kind, name: "src", path: path, tools: SourceFixtures.tools, verifySnapshot: true)
                let published = try store.backup(spec, node: "srv")
                #expect(published.location.kind == kind.rawValue)
                #expect(published.dna.regressions == nil)
                if kind == .svn {
                    #expect(published.dna.revision == "4")
                    #expect(published.location.fileName == "src-4.tar.gz")
                    #expect(published.dna.identity?.count == 36)
                }
                let artifact = try #require(try store.scan().artifacts.first)
                #expect(store.verify(artifact, deep: true).status == .intact)
                if kind != .folder {
                    #expect(try FileSystem.entries(of: dir.file("store/.staging")).isEmpty, "staging is cleaned up")
                }

                // Recover beside the original and compare; then over the original with --force.
                let target = kind == .sqlite ? dir.file("restored.db") : dir.file("restored")
                let report = try store.recover(artifact, to: target, tools: SourceFixtures.tools)
                #expect(report.target == target)
                let (_, restoredPrint) = try Self.fingerprintOf(kind, at: target)
                #expect(try restoredPrint() == before)

                let refused = #expect(throws: BackupError.self) {
                    try store.recover(artifact, to: path, tools: SourceFixtures.tools)
                }
                #expect(refused?.code == .refused)
                let forced = try store.recover(artifact, to: path, force: true, tools: SourceFixtures.tools)
                let aside = try #require(forced.movedAside)
                #expect(
                    FileManager.default.fileExists(atPath: aside), "the replaced source is moved aside, not deleted")
                #expect(try fingerprint() == before)
            }
        }
    }

    /// A fingerprint function for a restored source at `path`.
    static func fingerprintOf(_ kind: SourceKind, at path: String) throws -> (String, () throws -> String) {
        switch kind {
        case .svn:
            #expect(try Command.run("svnadmin", ["verify", "-q", path]).status == 0)
            return (path, { try fingerprintSvn(path) })
        case .git:
            #expect(try Command.run("git", ["--git-dir", path, "fsck", "--full"]).status == 0)
            return (
                path,
                {
                    try SourceFixtures.gitRefs(path)
                        + (try String(contentsOfFile: path + "/hooks/post-receive", encoding: .utf8))
                }
            )
        case .trac:
            #expect(try SourceFixtures.sqlite(path + "/db/trac.db", "PRAGMA integrity_check;") == "ok\n")
            return (
                path,
                {
                    try SourceFixtures.sqlite(
                        path + "/db/trac.db", "SELECT name, text FROM wiki WHERE name = 'BackupTest';")
                }
            )
        case .sqlite:
            return (path, { try SourceFixtures.sqlite(path, "SELECT count(*), sum(length(v)) FROM t;") })
        case .folder:
            return (
                path, { try TreeComparison.differences(path, path).joined() + "\(try FileSystem.entries(of: path))" }
            )
        }
    }

    @Test(arguments: [SourceKind.svn, .git, .trac, .sqlite])
    func aPathThatIsNotOfTheKindIsRefusedNamingIt(kind: SourceKind) async throws {
        try await blocking {
            try withTemporaryDirectory("notkind") { dir in
                let path = dir.file("plain")
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                try "x".write(toFile: path + "/file", atomically: true, encoding: .utf8)
                let target = kind == .sqlite ? path + "/file" : path
                let store = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try store.backup(
                        SourceSpec(kind: kind, name: "x", path: target, tools: SourceFixtures.tools), node: "n")
                }
                #expect(error?.code == .sourceInvalid)
                #expect(error?.message.contains(target) == true, "\(error?.message ?? "")")
                #expect(try store.scan().artifacts.isEmpty)
            }
        }
    }

    @Test func aMissingToolIsNamed() async throws {
        try await blocking {
            try withTemporaryDirectory("notool") { dir in
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 1)
                var tools = SourceTools()
                tools.svnlook.program = "/nonexistent/svnlook"
                let store = try Store.openForWriting(dir.file("store"))
                let error = #expect(throws: BackupError.self) {
                    try store.backup(SourceSpec(kind: .svn, name: "r", path: dir.file("repo"), tools: tools), node: "n")
                }
                #expect(error?.code == .toolMissing)
                #expect(error?.message.contains("/nonexistent/svnlook") == true)
            }
        }
    }

    @Test func tracWithoutTracAdminUsesTheBuiltInHotcopy() async throws {
        try await blocking {
            try withTemporaryDirectory("trac-builtin") { dir in
                let env = dir.file("env")
                try SourceFixtures.tracEnvironment(at: env)
                var tools = SourceFixtures.tools
                tools.tracAdmin.program = "/nonexistent/trac-admin"
                let store = try Store.openForWriting(dir.file("store"))
                let published = try store.backup(
                    SourceSpec(kind: .trac, name: "env", path: env, tools: tools), node: "n")
                let names = try ArchiveInspector.list(published.path).map(\.path)
                #expect(names.contains("env/db/trac.db"))
                #expect(names.contains("env/conf/trac.ini"))
                let artifact = try #require(try store.scan().artifacts.first)
                _ = try store.recover(artifact, to: dir.file("restored"), tools: tools)
                #expect(
                    try SourceFixtures.sqlite(
                        dir.file("restored/db/trac.db"), "SELECT count(*) FROM wiki WHERE name = 'BackupTest';")
                        == "1\n")
            }
        }
    }

    @Test func aPreBackupCommandRunsFirstAndItsFailureStopsTheBackup() async throws {
        try await blocking {
            try withTemporaryDirectory("prebackup") { dir in
                let db = dir.file("data.db")
                try SourceFixtures.sqliteDatabase(at: db, rows: 10)
                let store = try Store.openForWriting(dir.file("store"))
                var spec = SourceSpec(kind: .sqlite, name: "data", path: db, tools: SourceFixtures.tools)
                let sqlite3 = try ToolRunner.resolve("sqlite3")
                spec.preBackup = PreBackupStep(name: "trim", command: [sqlite3, db, "DELETE FROM t WHERE id > 3;"])
                let published = try store.backup(spec, node: "n")
                _ = try store.recover(try store.scan().artifacts[0], to: dir.file("r.db"))
                #expect(try SourceFixtures.sqlite(dir.file("r.db"), "SELECT count(*) FROM t;") == "3\n")
                spec.preBackup = PreBackupStep(name: "fail", command: ["/bin/sh", "-c", "echo why; exit 3"])
                let error = #expect(throws: BackupError.self) { try store.backup(spec, node: "n") }
                #expect(error?.code == .toolFailed)
                #expect(error?.message.contains("'fail'") == true && error?.message.contains("exit status 3") == true)
                #expect(error?.message.contains("why") == true)
                #expect(try store.scan().artifacts.map(\.path) == [published.path])
            }
        }
    }

    /// A notice command (sendmail, an agent's [notify]) gets the message on its standard input,
    /// and one that hangs is stopped at its timeout instead of blocking the alerts.
    @Test func aNoticeCommandGetsItsMessageOnStdinAndOneThatHangsIsStopped() async throws {
        try await blocking {
            try withTemporaryDirectory("notice-command") { dir in
                let out = dir.file("got")
                let sent = ProcessGroupRunner.deliver(
                    Array("Subject: x\n\nhello\n".utf8), through: ["/bin/sh", "-c", "cat > '\(out)'"])
                #expect(sent == nil)
                #expect(try String(contentsOfFile: out, encoding: .utf8) == "Subject: x\n\nhello\n")
                let hung = ProcessGroupRunner.deliver(Array("x".utf8), through: ["/bin/sleep", "20"], timeout: 1)
                #expect(hung?.contains("took more than 1 s") == true, "\(hung ?? "")")
                let refused = ProcessGroupRunner.deliver([], through: ["/bin/sh", "-c", "echo refused >&2; exit 75"])
                #expect(refused?.contains("exited with 75") == true && refused?.contains("refused") == true)
                // Another process's notice may be on its way this instant: only what stays counts.
                let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { name in
                    guard name.hasPrefix("scm-backup-stdin-"),
                        let date = try? FileManager.default.attributesOfItem(
                            atPath: (NSTemporaryDirectory() as NSString).appendingPathComponent(name))[
                                .modificationDate]
                            as? Date  // nil: gone meanwhile
                    else { return false }
                    return Date().timeIntervalSince(date) > 10
                }
                #expect(left.isEmpty, "no message left in a temporary file: \(left)")
            }
        }
    }

    @Test func aPreBackupStepGetsOnlyItsEnvironmentRunsInRootAndItsGroupDiesAtTheTimeout() async throws {
        try await blocking {
            try withTemporaryDirectory("prebackup-limits") { _ in
                let step = PreBackupStep(
                    name: "env", command: ["/bin/sh", "-c", "pwd; env | sort"], environment: ["ONLY": "this"])
                let text = String(decoding: try step.run().output, as: UTF8.self)
                #expect(text.hasPrefix("/\n"))
                #expect(text.contains("ONLY=this"))
                #expect(!text.contains("HOME=") && !text.contains("PATH=/"))
                // A child that ignores nothing and sleeps: the whole group is killed at the timeout.
                let unique = "31.\(Int.random(in: 100...999))"
                let hang = PreBackupStep(
                    name: "hang", command: ["/bin/sh", "-c", "sleep \(unique) & sleep 30"], timeoutSeconds: 1)
                let started = Date()
                let error = #expect(throws: BackupError.self) { try hang.run() }
                #expect(error?.message.contains("timeout of 1 s") == true)
                #expect(Date().timeIntervalSince(started) < 10)
                let noisy = try ProcessGroupRunner.run(
                    ["/bin/sh", "-c", "head -c 200000 /dev/zero"], environment: [:], timeout: 10)
                #expect(noisy.output.count == ProcessGroupRunner.defaultOutputCap && noisy.truncated)
                let survivors = try ToolRunner.run(Tool("pgrep"), ["-f", "sleep \(unique)"], allowFailure: true)
                #expect(survivors.status == 1, "a child of the step outlived its timeout: \(survivors.text)")
            }
        }
    }
}
