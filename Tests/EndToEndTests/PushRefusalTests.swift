import BackupTesting
import Foundation
import Testing

/// A refused push names the receiver's code and message (issue 11, W6): the receiver answers
/// the sender's HEAD (which has no body) with its error in the `SCM-Error` header too, so the
/// failed task says why instead of ending in a blank.
@Suite(.timeLimit(.minutes(2)))
struct PushRefusalTests {
    @Test func aPushTheReceiverRefusesSaysWhy() async throws {
        try await blocking {
            try withTemporaryDirectory("push-refusal") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
                try "alice:x\n".write(toFile: dir.file("conf/users.conf"), atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [
                        .init("srv1", sources: [("conf", "folder", dir.file("conf"))]),
                        .init("vault", roles: ["backup"]),
                    ], pairings: [("srv1", "vault")], transfers: true)
                try site.startCoordinator()
                try site.startAgent("srv1", dataPort: true)
                // vault exchanges artifacts with srv9 only.
                try site.startAgent("vault", dataPort: true, extra: "peers = [\"srv9\"]")
                try site.waitUntil("both online") {
                    try site.admin(["nodes"]).stdout.components(separatedBy: "online ").count - 1 == 2
                }
                try ProcessSite.ok(
                    try site.admin(["tasks", "submit", "--kind", "backup", "--node", "srv1", "--source", "conf"]))
                try site.waitUntil("the backup succeeded") {
                    try site.tasks().first?.state == "succeeded"
                }
                try ProcessSite.ok(try site.admin(["transfer", "--from", "srv1", "--to", "vault"]))
                var push: ProcessSite.TaskView?
                try site.waitUntil("the push failed") {
                    push = try site.tasks().first { $0.kind == "transfer" }
                    return push?.state == "failed"
                }
                let error = try #require(push?.lastError)
                #expect(push?.lastErrorCode == "not-a-peer", "\(error)")
                #expect(error.contains("'vault' refused HEAD of") && error.contains("(403)"), "\(error)")
                #expect(error.contains("exchanges artifacts only with its peers (srv9), not 'srv1'"), "\(error)")
            }
        }
    }
}
