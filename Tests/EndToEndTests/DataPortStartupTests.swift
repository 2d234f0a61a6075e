import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A data port that cannot listen is a fatal start-up error naming the address: the agent
/// exits instead of hanging without its port.
@Suite(.timeLimit(.minutes(2)))
struct DataPortStartupTests {
    @Test func aSecondAgentOnATakenDataPortExitsNamingTheAddress() async throws {
        try await blocking {
            try withTemporaryDirectory("data-port-taken") { dir in
                let site = try ProcessSite(dir, nodes: [.init("srv1")])
                try site.startCoordinator()
                try site.startAgent("srv1", dataPort: true, arguments: ["--data-port-file", dir.file("srv1.port")])
                let port = try BackgroundProcess.waitForFile(dir.file("srv1.port"))
                try SiteConfigFiles.writeAgent(
                    dir.file("second.toml"), coordinator: site.url, name: "srv1", certs: dir.file("certs"),
                    pki: dir.file("pki"), store: dir.file("store-second"), sourceRoots: [dir.path],
                    extra: "data_listen = \"127.0.0.1:\(port)\"\nticket_key = \"\(dir.file("pki/ticket-signing.pub"))\""
                )
                let second = try BackgroundProcess(
                    Paths.scmBackupBinary, ["agent", "--config", dir.file("second.toml")], log: dir.file("second.log"))
                try site.waitUntil("the second agent exited", seconds: 30) { !second.isRunning }
                #expect(second.stop() != 0)
                #expect(
                    second.output.contains("The data port cannot listen on 127.0.0.1:\(port) (data_listen"),
                    "\(second.output)")
                #expect(site.process("srv1")?.isRunning == true, "the first agent keeps its port")
            }
        }
    }
}
