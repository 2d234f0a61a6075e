import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SIGHUP on a real coordinator process: a good file applies (new schedules show at once), a
/// broken one and one that changes the listen address are refused with the reason in the log,
/// and the configuration in use stays.
@Suite(.timeLimit(.minutes(3)))
struct ReloadProcessTests {
    struct Schedule: Decodable {
        var source: String
        var schedule: String
    }

    @Test func sighupAppliesAGoodFileAndKeepsTheOldOneForABrokenFile() async throws {
        try await blocking {
            try withTemporaryDirectory("reload") { dir in
                let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("conf", "folder", dir.file("conf"))])])
                try site.startCoordinator()
                let file = dir.file("site.toml")
                let original = try String(contentsOfFile: file, encoding: .utf8)
                func schedule() throws -> String? {
                    try site.json([Schedule].self, ["schedules"]).first { $0.source == "conf" }?.schedule
                }
                func hangUp(_ text: String) throws {
                    try text.write(toFile: file, atomically: true, encoding: .utf8)
                    let hub = try #require(site.process("hub"))
                    #expect(kill(hub.pid, SIGHUP) == 0)
                }
                #expect(try schedule() == "off")

                try hangUp(original.replacingOccurrences(of: "default = \"off\"", with: "default = \"0 4 * * *\""))
                try site.waitUntil("the new schedule applies") { try schedule() == "0 4 * * *" }

                try hangUp(original + "\n[nodes.srv1.sources.conf]\nkind = \"git\"\n")
                try site.waitUntil("the broken file is refused") {
                    site.process("hub")?.output.contains("SIGHUP: reload refused") == true
                }
                #expect(site.process("hub")?.output.contains("site.toml") == true)
                #expect(try schedule() == "0 4 * * *", "the configuration in use stays")

                let listen = try #require(
                    original.range(of: #"listen = "127\.0\.0\.1:\d+""#, options: .regularExpression))
                try hangUp(original.replacingCharacters(in: listen, with: "listen = \"127.0.0.1:1\""))
                try site.waitUntil("the listen change is refused") {
                    site.process("hub")?.output.contains("coordinator.listen changed, which only a restart applies")
                        == true
                }
                #expect(site.process("hub")?.isRunning == true)
                #expect(try schedule() == "0 4 * * *")
            }
        }
    }

    @Test func sighupGivesTheAgentNewSourceRootsAndRefusesAStoreChange() async throws {
        try await blocking {
            try withTemporaryDirectory("reload-agent") { dir in
                let conf = dir.file("data/conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                try "x\n".write(toFile: conf + "/a.conf", atomically: true, encoding: .utf8)
                try FileManager.default.createDirectory(
                    atPath: dir.file("elsewhere"), withIntermediateDirectories: true)
                let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("conf", "folder", conf)])])
                try site.startCoordinator()
                try site.startAgent("srv1", sourceRoots: [dir.file("elsewhere")])
                try site.backup("conf", on: "srv1")
                let refused = try site.settle()
                #expect(refused.first?.state == "failed" && refused.first?.lastError?.contains("outside") == true)

                let file = dir.file("agent-srv1.toml")
                let original = try String(contentsOfFile: file, encoding: .utf8)
                func hangUp(_ text: String) throws {
                    try text.write(toFile: file, atomically: true, encoding: .utf8)
                    let agent = try #require(site.process("srv1"))
                    #expect(kill(agent.pid, SIGHUP) == 0)
                }
                // A store change is refused, naming the key; the roots stay as they were.
                try hangUp(
                    original.replacingOccurrences(of: dir.file("elsewhere"), with: dir.file("data"))
                        .replacingOccurrences(of: dir.file("store-srv1"), with: dir.file("other-store")))
                try site.waitUntil("the store change is refused") {
                    site.process("srv1")?.output.contains("agent.store changed, which only a restart applies") == true
                }
                // The new roots alone apply: the next backup is allowed.
                try hangUp(original.replacingOccurrences(of: dir.file("elsewhere"), with: dir.file("data")))
                try site.waitUntil("the reload applies") {
                    site.process("srv1")?.output.contains("SIGHUP: configuration reloaded") == true
                }
                try site.backup("conf", on: "srv1")
                let tasks = try site.settle()
                #expect(tasks.first?.state == "succeeded", "\(tasks.first?.lastError ?? "")")
            }
        }
    }
}
