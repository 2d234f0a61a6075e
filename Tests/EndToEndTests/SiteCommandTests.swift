import BackupTesting
import Foundation
import Testing

/// The coordinator as a real process, and the operator commands talking to it.
@Suite(.timeLimit(.minutes(2)))
struct SiteCommandTests {
    @Test func anOperatorTalksToARunningCoordinatorWithCertificatesFromPKI() async throws {
        try await blocking {
            try withTemporaryDirectory("site") { dir in
                let pki = dir.file("pki")
                #expect(try Command.scmBackup(["pki", "init", "--dir", pki, "--site", "test"]).status == 0)
                for (name, role) in [("hub", "coordinator"), ("alice", "operator"), ("root", "admin")] {
                    let r = try Command.scmBackup([
                        "pki", "issue", "--dir", pki, "--name", name, "--role", role, "--out",
                        dir.file("certs"),
                    ])
                    #expect(r.status == 0, "\(r.stderr)")
                }
                let listed = try Command.scmBackup(["pki", "list", "--dir", pki])
                #expect(listed.stdout.split(separator: "\n").count == 3)

                try SiteConfigFiles.writeCoordinator(
                    dir.file("site.toml"), listen: "127.0.0.1:0", certs: dir.file("certs"), pki: pki,
                    database: dir.file("catalog.sqlite"),
                    nodes: [.init("srv1", sources: [("conf", "folder", "/etc/apache2")])])
                let coordinator = try BackgroundProcess(
                    Paths.scmBackupBinary,
                    ["coordinator", "--config", dir.file("site.toml"), "--port-file", dir.file("port")],
                    log: dir.file("coordinator.log"))
                defer { coordinator.stop(SIGKILL) }
                let port = try BackgroundProcess.waitForFile(dir.file("port"))
                func site(_ who: String, _ args: [String]) throws -> CommandResult {
                    try Command.scmBackup(
                        args + [
                            "--coordinator", "https://127.0.0.1:\(port)", "--cert", dir.file("certs/\(who).pem"),
                            "--key",
                            dir.file("certs/\(who).key"),
                            "--ca", pki + "/ca.pem",
                        ])
                }
                let nodes = try site("alice", ["nodes"])
                #expect(nodes.status == 0, "\(nodes.stderr)\n\(coordinator.output)")
                #expect(nodes.stdout.contains("srv1             OFFLINE server"), "\(nodes.stdout)")
                #expect(nodes.stdout.contains("heartbeat never"))
                let json = try site("alice", ["nodes", "--json"])
                #expect(json.stdout.contains("\"roles\" : [\n      \"server\"\n    ]"), "\(json.stdout)")

                let refused = try site("alice", ["tasks", "submit", "--kind", "verify", "--node", "srv1"])
                #expect(refused.status == 1)
                #expect(refused.stderr.contains("operator certificate 'alice' may not submit tasks"))
                let unknown = try site("root", ["tasks", "submit", "--kind", "verify", "--node", "ghost"])
                #expect(unknown.status == 1)
                #expect(unknown.stderr.contains("Node 'ghost' is not in the site configuration"))
                let queued = try site(
                    "root", ["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "conf"])
                #expect(queued.status == 0, "a configured node's task waits for its agent: \(queued.stderr)")
                // The same connection from a file with an [operator] table.
                try """
                [operator]
                coordinator = "https://127.0.0.1:\(port)"
                certificate = "certs/alice.pem"
                key = "certs/alice.key"
                ca = "pki/ca.pem"
                """.write(toFile: dir.file("operator.toml"), atomically: true, encoding: .utf8)
                let fromFile = try Command.scmBackup(["nodes", "--config", dir.file("operator.toml")])
                #expect(fromFile.status == 0, "\(fromFile.stderr)")
                #expect(fromFile.stdout.contains("srv1"))
                try "[operator]\ncoordinater = \"x\"\n".write(
                    toFile: dir.file("typo.toml"), atomically: true, encoding: .utf8)
                let typo = try Command.scmBackup(["nodes", "--config", dir.file("typo.toml")])
                #expect(typo.status == 1)
                #expect(typo.stderr.contains("typo.toml:2: operator.coordinater: unknown key"), "\(typo.stderr)")
                let none = try site("alice", ["artifacts"])
                #expect(none.stdout.contains("the catalog knows no copy of any artifact"), "\(none.stderr)")
                let noneEver = try site("alice", ["artifacts", "--gone"])
                #expect(noneEver.stdout.contains("the catalog knows no artifacts yet"), "\(noneEver.stderr)")

                #expect(
                    coordinator.stop(SIGTERM) == 0, "a SIGTERM stops the coordinator cleanly: \(coordinator.output)")
                let down = try site("alice", ["nodes"])
                #expect(down.status == 10)
                #expect(down.stderr.contains("Cannot reach the coordinator at https://127.0.0.1:\(port)"))
            }
        }
    }

    /// The site half of the main job, ops/demo-site.sh, runs to its end with real processes.
    @Test func theSiteDemoRuns() async throws {
        try await blocking {
            try withTemporaryDirectory("site-demo") { dir in
                let r = try Command.run(
                    "bash", [Paths.packageRoot + "/ops/demo-site.sh", "--dir", dir.file("site")],
                    environment: ["SCM_BACKUP_BIN": Paths.scmBackupBinary])
                #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
                #expect(r.stdout.contains("5 transfers queued, 0 skipped"))
                #expect(r.stdout.contains("0 transfers queued, 5 skipped"))
                #expect(r.stdout.contains("1 mutant, 0 could not be verified; mutants (quarantined)"))
                #expect(r.stdout.contains("backup1's copy is whole again: byte-identical to the origin's"))
                #expect(r.stdout.contains("no mutants"))
                #expect(r.stdout.contains("deleted 1 artifacts; kept cms02/svn/env/"))
                // Step 12: a lost repository and a broken users.conf, back through the site.
                #expect(r.stdout.contains("svnadmin verify: ok, youngest revision"), "\(r.stdout.suffix(3000))")
                #expect(r.stdout.contains("-alice:********") && !r.stdout.contains("$apr1$broken"))
                #expect(r.stdout.contains("users.conf now: alice:$apr1$demo bob:$apr1$demo"))
                #expect(r.stdout.contains("stopped; the demo's files are in"))
            }
        }
    }
}
