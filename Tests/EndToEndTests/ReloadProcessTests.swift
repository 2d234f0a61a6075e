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
}
