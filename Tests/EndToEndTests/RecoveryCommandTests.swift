import BackupTesting
import Foundation
import Testing

/// backup of each kind, purge, recover and recover-config as a user runs them.
struct RecoveryCommandTests {
    @Test func anSvnRepositoryIsBackedUpPurgedAndRecoveredFromTheCommandLine() async throws {
        try await blocking {
            try withTemporaryDirectory("cli-svn") { dir in
                let repo = dir.file("repo")
                try SourceFixtures.svnRepository(at: repo, commits: 2)
                let store = dir.file("store")
                for _ in 0..<3 {
                    let r = try Command.scmBackup([
                        "backup", "--store", store, "--node", "srv", "--kind", "svn", "--name", "repo", repo,
                        "--verify-snapshot",
                    ])
                    #expect(r.status == 0, "\(r.stderr)")
                    #expect(r.stdout.contains("revision"))
                    try SourceFixtures.svnCommit(repo)
                }
                let dry = try Command.scmBackup(["purge", "--store", store, "--keep-last", "1"])
                #expect(dry.status == 0)
                #expect(dry.stdout.contains("dry run: 2 artifacts would be deleted, 1 kept"))
                #expect(try Command.scmBackup(["ls", "--store", store]).stdout.contains("3 artifacts"))
                let applied = try Command.scmBackup(["purge", "--store", store, "--keep-last", "1", "--apply"])
                #expect(applied.stdout.contains("2 artifacts deleted, 1 kept"))

                let target = dir.file("restored")
                let r = try Command.scmBackup([
                    "recover", "--store", store, "--name", "repo", "--to", target, "--owner", "nobody:nogroup",
                ])
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.contains("recovered svn source 'repo' revision 4"))
                #expect(try Command.run("svnlook", ["youngest", target]).stdout == "4\n")
                var st = stat()
                #expect(stat(target + "/format", &st) == 0)
                #expect(st.st_uid == getpwnam("nobody")!.pointee.pw_uid)

                let again = try Command.scmBackup(["recover", "--store", store, "--name", "repo", "--to", target])
                #expect(again.status == 1)
                #expect(again.stderr.contains("already exists"))
                #expect(again.stderr.contains("--force"))
            }
        }
    }

    @Test func recoverConfigShowsTheDiffAndReplacesOnlyWhatTheUserAccepts() async throws {
        try await blocking {
            try withTemporaryDirectory("cli-config") { dir in
                let live = dir.file("conf")
                try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
                try "alice:h1\nbob:h2\n".write(toFile: live + "/users.conf", atomically: true, encoding: .utf8)
                try "[/]\n* = r\n".write(toFile: live + "/authz.conf", atomically: true, encoding: .utf8)
                let store = dir.file("store")
                #expect(
                    try Command.scmBackup([
                        "backup", "--store", store, "--node", "srv", "--kind", "folder", "--name", "apache-confdir",
                        live,
                    ]).status == 0)
                try "alice:h1\n".write(toFile: live + "/users.conf", atomically: true, encoding: .utf8)
                try "[/]\n* = rw\n".write(toFile: live + "/authz.conf", atomically: true, encoding: .utf8)

                // Files come in byte order: authz.conf first (answer no), then users.conf (answer yes).
                let r = try Command.scmBackup(
                    ["recover-config", "--store", store, "--name", "apache-confdir", "--to", live], input: "n\ny\n")
                #expect(r.status == 3, "one changed file was left as it is: \(r.stdout) \(r.stderr)")
                #expect(r.stdout.contains("+bob:h2"))
                #expect(r.stdout.contains("-* = rw"))
                #expect(try String(contentsOfFile: live + "/users.conf", encoding: .utf8) == "alice:h1\nbob:h2\n")
                #expect(try String(contentsOfFile: live + "/authz.conf", encoding: .utf8) == "[/]\n* = rw\n")
                let kept = try FileManager.default.contentsOfDirectory(atPath: live).filter {
                    $0.hasPrefix("users.conf.before-recover-")
                }
                #expect(kept.count == 1)

                let yes = try Command.scmBackup([
                    "recover-config", "--store", store, "--name", "apache-confdir", "--to", live, "--yes",
                ])
                #expect(yes.status == 0)
                #expect(yes.stdout.contains("users.conf: unchanged"))
                #expect(try String(contentsOfFile: live + "/authz.conf", encoding: .utf8) == "[/]\n* = r\n")
            }
        }
    }

    @Test func aTracEnvironmentAndItsRepositoryAreBackedUpAsAPairFromTheCommandLine() async throws {
        try await blocking {
            try withTemporaryDirectory("cli-pair") { dir in
                try SourceFixtures.svnRepository(at: dir.file("repo"), commits: 2)
                try SourceFixtures.tracEnvironment(at: dir.file("env"), repository: dir.file("repo"))
                let r = try Command.scmBackup([
                    "backup", "--store", dir.file("store"), "--node", "srv", "--kind", "trac", "--name", "proj",
                    dir.file("env"),
                    "--svn-repo", dir.file("repo"), "--trac-admin", SourceFixtures.tracAdmin, "--json",
                ])
                #expect(r.status == 0, "\(r.stderr)")
                struct Out: Decodable {
                    struct D: Decodable {
                        var kind: String
                        var pairedWith: String?
                    }
                    var dna: D
                }
                let outs = try JSONDecoder().decode([Out].self, from: Data(r.stdout.utf8))
                #expect(outs.map(\.dna.kind) == ["trac", "svn"])
                #expect(outs.allSatisfy { $0.dna.pairedWith != nil })
            }
        }
    }

    @Test func aRegressionIsShownByLsAndVerify() async throws {
        try await blocking {
            try withTemporaryDirectory("cli-regression") { dir in
                let repo = dir.file("repo")
                try SourceFixtures.svnRepository(at: repo, commits: 1)
                let store = dir.file("store")
                let backup = ["backup", "--store", store, "--node", "srv", "--kind", "svn", "--name", "repo", repo]
                #expect(try Command.scmBackup(backup).status == 0)
                #expect(try Command.run("svnadmin", ["setuuid", repo]).status == 0)
                let flagged = try Command.scmBackup(backup)
                #expect(flagged.status == 0)
                #expect(flagged.stdout.contains("warning: regression: repository UUID changed"))
                #expect(
                    try Command.scmBackup(["ls", "--store", store]).stdout.contains(
                        "REGRESSION: repository UUID changed"))
                let verify = try Command.scmBackup(["verify", "--store", store])
                #expect(verify.status == 0)
                #expect(verify.stdout.contains("    regression: repository UUID changed"))
            }
        }
    }
}
