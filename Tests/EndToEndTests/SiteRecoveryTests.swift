import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Recovery through the site (`scm-backup recover --node`): a repository lost on its server
/// comes back from the copy on a backup node, at the revision that was backed up, and a Trac
/// environment with its repository from one stamp; every target outside the server's
/// `recovery_roots` is refused by its agent before a byte moves, and a name two servers share
/// is refused without `--origin`.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct SiteRecoveryTests {
    struct Task: Decodable {
        var id: Int64
        var kind: String
        var state: String
        var lastErrorCode: String?
        var lastError: String?
    }

    @Test func aLostRepositoryAndATracPairComeBackThroughTheSiteOnlyIntoRecoveryRoots() async throws {
        try await blocking {
            try withTemporaryDirectory("site-recover") { dir in
                var passed = false
                let scm = dir.file("scm")
                let elsewhere = dir.file("elsewhere")
                for folder in [scm, elsewhere, dir.file("other")] {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                }
                try SourceFixtures.svnRepository(at: scm + "/repo", commits: 3)
                try SourceFixtures.svnRepository(at: scm + "/projrepo", commits: 2)
                try SourceFixtures.tracEnvironment(at: scm + "/proj", repository: scm + "/projrepo")
                try SourceFixtures.svnRepository(at: dir.file("other/repo"), commits: 1)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init(
                            "srv1",
                            sources: [
                                ("repo", "svn", scm + "/repo"), ("projrepo", "svn", scm + "/projrepo"),
                                ("proj", "trac", scm + "/proj"),
                            ], sourceExtra: ["proj": "svn_source = \"projrepo\""]),
                        .init("srv2", sources: [("repo", "svn", dir.file("other/repo"))]),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault"), ("srv2", "vault")], transfers: true)
                defer {
                    // What the processes said, when the test failed (for CI); a missing log is empty.
                    if !passed { site.printLogs(["coordinator.log", "agent-srv1.log", "agent-vault.log"]) }
                }
                let tools = SourceFixtures.tracAdmin.hasPrefix("/") ? ["trac_admin": SourceFixtures.tracAdmin] : [:]
                try site.startCoordinator()
                try site.startAgent(
                    "srv1", tools: tools, dataPort: true,
                    extra: "recovery_roots = [\(SiteConfigFiles.quote(scm))]")
                for name in ["srv2", "vault"] { try site.startAgent(name, tools: tools, dataPort: true) }
                try site.waitUntilOnline(3)
                let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
                try site.settle()
                // The repository moves on after its backup, then is lost.
                #expect(try SourceFixtures.svnCommit(scm + "/repo") == 4)
                try FileManager.default.removeItem(atPath: scm + "/repo")
                let storeBefore = try Self.files(dir.file("store-srv1"))
                let catalogBefore = try site.admin(["artifacts", "--json"]).stdout
                func recover(_ args: [String]) throws -> CommandResult {
                    try site.admin(["recover", "--node", "srv1", "--poll-seconds", "0.3"] + args)
                }

                // Refused before a byte moves: a target outside recovery_roots, one reached by a
                // symlink inside them, a name two servers share.
                let outside = try recover(["--source", "repo", "--origin", "srv1", "--to", elsewhere + "/repo"])
                #expect(
                    outside.status == 1 && outside.stderr.contains("outside the recovery_roots"), "\(outside.stderr)")
                try FileManager.default.createSymbolicLink(atPath: scm + "/link", withDestinationPath: elsewhere)
                let viaLink = try recover(["--source", "repo", "--origin", "srv1", "--to", scm + "/link/repo"])
                #expect(
                    viaLink.status == 1 && viaLink.stderr.contains("outside the recovery_roots"), "\(viaLink.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty, "nothing written there")
                let ambiguous = try recover(["--source", "repo", "--to", scm + "/repo"])
                #expect(
                    ambiguous.status == 1 && ambiguous.stderr.contains("ambiguous")
                        && ambiguous.stderr.contains("srv1/svn/repo") && ambiguous.stderr.contains("srv2/svn/repo"),
                    "\(ambiguous.stderr)")
                let refusedTasks = try site.json([Task].self, ["tasks", "list", "--limit", "1000"]).filter {
                    $0.kind == "recover"
                }
                #expect(
                    refusedTasks.count == 2
                        && refusedTasks.allSatisfy {
                            $0.state == "failed" && $0.lastErrorCode == "outside-recovery-roots"
                        },
                    "\(refusedTasks)")
                func readsForRecovery() throws -> Int {
                    try String(contentsOfFile: dir.file("agent-vault.log"), encoding: .utf8)
                        .split(separator: "\n").filter { $0.contains("artifact read") && $0.contains("recover") }.count
                }
                #expect(try readsForRecovery() == 0, "no byte was read for a refused recovery")

                // From the backup node's copy: the revision that was backed up, verified.
                let back = try recover([
                    "--source", "repo", "--origin", "srv1", "--to", scm + "/repo", "--from", "vault",
                ])
                #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
                #expect(back.stdout.contains("revision 3") && back.stdout.contains("on vault"), "\(back.stdout)")
                #expect(try readsForRecovery() == 1, "read from vault's data port")
                let verify = try Command.run("svnadmin", ["verify", "-q", scm + "/repo"])
                #expect(verify.status == 0, "\(verify.stderr)")
                let youngest = try Command.run("svnlook", ["youngest", scm + "/repo"])
                #expect(youngest.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
                // It is there now: without --force the next one is refused, with it moved aside.
                let again = try recover(["--source", "repo", "--origin", "srv1", "--to", scm + "/repo"])
                #expect(again.status == 1 && again.stderr.contains("--force"), "\(again.stderr)")
                let forced = try recover(["--source", "repo", "--origin", "srv1", "--to", scm + "/repo", "--force"])
                #expect(
                    forced.status == 0 && forced.stdout.contains("before-recover-"), "\(forced.stdout)\(forced.stderr)")

                // A Trac environment and its repository, both lost, back from one stamp.
                try FileManager.default.removeItem(atPath: scm + "/proj")
                try FileManager.default.removeItem(atPath: scm + "/projrepo")
                let pair = try recover(["--source", "proj", "--to", scm + "/proj"])
                #expect(pair.status == 0, "\(pair.stdout)\(pair.stderr)")
                let lines = pair.stdout.split(separator: "\n").filter { $0.hasPrefix("recovered") }
                #expect(
                    lines.count == 2 && lines[0].contains("svn source 'projrepo'")
                        && lines[1].contains("trac source 'proj'"), "\(pair.stdout)")
                let stamps = lines.compactMap { line in
                    line.split(separator: " ").first { $0.hasPrefix("srv1/") }.map {
                        $0.split(separator: "/")[3...6].joined(separator: "/")
                    }
                }
                #expect(stamps.count == 2 && stamps[0] == stamps[1], "one stamp: \(stamps)")
                #expect(try Command.run("svnadmin", ["verify", "-q", scm + "/projrepo"]).status == 0)
                let wiki = try Command.run(SourceFixtures.tracAdmin, [scm + "/proj", "wiki", "export", "BackupTest"])
                #expect(wiki.status == 0 && wiki.stdout.contains("This page must survive a backup."), "\(wiki.stderr)")

                // Nothing of it entered srv1's store or the catalog, and no scratch is left.
                #expect(try Self.files(dir.file("store-srv1")) == storeBefore)
                #expect(try site.admin(["artifacts", "--json"]).stdout == catalogBefore)
                #expect(
                    try FileManager.default.contentsOfDirectory(atPath: scm).filter { $0.hasPrefix(".scm-backup") }
                        .isEmpty)
                let events = try site.admin(["events"]).stdout
                #expect(events.contains("POST /v1/recoveries"), "\(events)")
                passed = true
            }
        }
    }

    /// A folder source through the site: its diffs shown at the admin's CLI only (credential
    /// lines masked unless --show-secrets), never in the catalog or a log; a file replaced only
    /// after a yes, the live one kept aside; one answered no left as it is (exit 3).
    @Test func aFolderShowsItsDiffOnlyAtTheCLIAndReplacesOnlyWhatWasConfirmed() async throws {
        try await blocking {
            try withTemporaryDirectory("site-recover-folder") { dir in
                var passed = false
                let conf = dir.file("scm/conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                let secret = "hunter2-\(UUID().uuidString.prefix(8))"
                try "[users]\nharry = \(secret)\nsally = sallys-old\n".write(
                    toFile: conf + "/users.conf", atomically: true, encoding: .utf8)
                try "[/]\nharry = rw\n".write(toFile: conf + "/authz.conf", atomically: true, encoding: .utf8)
                try "ServerName svn.example.org\n".write(toFile: conf + "/svn.conf", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: [("conf", "folder", conf)]), .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault")], transfers: true)
                defer {
                    if !passed { site.printLogs(["coordinator.log", "agent-srv1.log"]) }
                }
                try site.startCoordinator()
                try site.startAgent(
                    "srv1", dataPort: true, extra: "recovery_roots = [\(SiteConfigFiles.quote(dir.file("scm")))]")
                try site.startAgent("vault", dataPort: true)
                try site.waitUntilOnline(2)
                let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
                try site.settle()
                // Someone edits users.conf and deletes authz.conf.
                try "[users]\nharry = typo\nsally = sallys-old\n".write(
                    toFile: conf + "/users.conf", atomically: true, encoding: .utf8)
                try FileManager.default.removeItem(atPath: conf + "/authz.conf")
                let recover = ["recover", "--node", "srv1", "--source", "conf", "--to", conf, "--from", "vault"]

                // Answered no to both: the diffs, masked; nothing replaced; exit 3.
                let declined = try site.admin(recover + ["--poll-seconds", "0.3"], input: "n\nn\n")
                #expect(declined.status == 3, "\(declined.stdout)\(declined.stderr)")
                #expect(declined.stdout.contains("users.conf: differs from the backup"), "\(declined.stdout)")
                #expect(declined.stdout.contains("authz.conf: missing; the backup has it"), "\(declined.stdout)")
                #expect(declined.stdout.contains("-harry = ********") && declined.stdout.contains("+harry = ********"))
                #expect(!declined.stdout.contains(secret) && !declined.stdout.contains("typo"), "\(declined.stdout)")
                #expect(declined.stdout.contains("1 files are as the backup has them"), "\(declined.stdout)")
                #expect(!FileManager.default.fileExists(atPath: conf + "/authz.conf"))
                #expect(try String(contentsOfFile: conf + "/users.conf", encoding: .utf8).contains("typo"))

                // --show-secrets shows them; no to authz.conf, yes to users.conf (asked in name order).
                let shown = try site.admin(recover + ["--show-secrets", "--poll-seconds", "0.3"], input: "n\ny\n")
                #expect(shown.status == 3, "\(shown.stdout)\(shown.stderr)")
                #expect(shown.stdout.contains("+harry = \(secret)") && shown.stdout.contains("-harry = typo"))
                #expect(shown.stdout.contains("replaced in \(conf)") && shown.stdout.contains("before-recover-"))
                #expect(try String(contentsOfFile: conf + "/users.conf", encoding: .utf8).contains(secret))
                let kept = try FileManager.default.contentsOfDirectory(atPath: conf).filter {
                    $0.hasPrefix("users.conf.before-recover-")
                }
                #expect(kept.count == 1)
                #expect(!FileManager.default.fileExists(atPath: conf + "/authz.conf"))

                // --yes: the rest.
                let all = try site.admin(recover + ["--yes", "--poll-seconds", "0.3"])
                #expect(all.status == 0, "\(all.stdout)\(all.stderr)")
                #expect(try String(contentsOfFile: conf + "/authz.conf", encoding: .utf8) == "[/]\nharry = rw\n")

                // The secret went to the CLI only: not into the catalog, its WAL or any log.
                for file in [
                    "catalog.sqlite", "catalog.sqlite-wal", "coordinator.log", "agent-srv1.log", "agent-vault.log",
                ]
                where FileManager.default.fileExists(atPath: dir.file(file)) {
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file(file)))
                    #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds the secret")
                    #expect(bytes.range(of: Data("typo".utf8)) == nil, "\(file) holds a live line")
                }
                let tasks = try site.json([Task].self, ["tasks", "list", "--limit", "1000"]).filter {
                    $0.kind == "recover"
                }
                #expect(tasks.count == 5 && tasks.allSatisfy { $0.state == "succeeded" }, "\(tasks)")
                passed = true
            }
        }
    }

    /// Every file under `root` (relative), for "nothing changed here".
    static func files(_ root: String) throws -> [String] {
        (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
            !$0.hasPrefix(".") && !$0.contains("/.")
        }.sorted()
    }
}
