import BackupTesting
import Foundation
import Testing

/// The coordinator as a real process, and the operator commands talking to it.
@Suite(.timeLimit(.minutes(2)))
struct SiteCommandTests {
    @Test func anOperatorTalksToARunningCoordinatorWithCertificatesFromPKI() throws {
        try withTemporaryDirectory("site") { dir in
            let pki = dir.file("pki")
            #expect(try Command.scmBackup(["pki", "init", "--dir", pki, "--site", "test"]).status == 0)
            for (name, role) in [("hub", "coordinator"), ("alice", "operator"), ("root", "admin")] {
                let r = try Command.scmBackup([
                    "pki", "issue", "--dir", pki, "--name", name, "--role", role, "--ip", "127.0.0.1", "--out",
                    dir.file("certs"),
                ])
                #expect(r.status == 0, "\(r.stderr)")
            }
            let listed = try Command.scmBackup(["pki", "list", "--dir", pki])
            #expect(listed.stdout.split(separator: "\n").count == 3)

            let coordinator = try BackgroundProcess(
                Paths.scmBackupBinary,
                [
                    "coordinator", "--listen", "127.0.0.1:0", "--cert", dir.file("certs/hub.pem"), "--key",
                    dir.file("certs/hub.key"),
                    "--ca", pki + "/ca.pem", "--revoked", pki + "/revoked.json", "--db", dir.file("catalog.sqlite"),
                    "--port-file", dir.file("port"),
                ], log: dir.file("coordinator.log"))
            defer { coordinator.stop(SIGKILL) }
            let port = try BackgroundProcess.waitForFile(dir.file("port"))
            func site(_ who: String, _ args: [String]) throws -> CommandResult {
                try Command.scmBackup(
                    args + [
                        "--coordinator", "https://127.0.0.1:\(port)", "--cert", dir.file("certs/\(who).pem"), "--key",
                        dir.file("certs/\(who).key"),
                        "--ca", pki + "/ca.pem",
                    ])
            }
            let nodes = try site("alice", ["nodes"])
            #expect(nodes.status == 0, "\(nodes.stderr)\n\(coordinator.output)")
            #expect(nodes.stdout.contains("no node has registered yet"))
            let json = try site("alice", ["nodes", "--json"])
            #expect(
                json.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || json.stdout.contains("[]"),
                "\(json.stdout)")

            let refused = try site("alice", ["tasks", "submit", "--kind", "verify", "--node", "srv1"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("operator certificate 'alice' may not submit tasks"))
            let unknown = try site("root", ["tasks", "submit", "--kind", "verify", "--node", "srv1"])
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("Node 'srv1' has never registered"))

            #expect(coordinator.stop(SIGTERM) == 0, "a SIGTERM stops the coordinator cleanly: \(coordinator.output)")
            let down = try site("alice", ["nodes"])
            #expect(down.status == 10)
            #expect(down.stderr.contains("Cannot reach the coordinator at https://127.0.0.1:\(port)"))
        }
    }
}
