import AsyncHTTPClient
import BackupCoordinator
import BackupProtocol
import BackupTesting
import Foundation
import NIOSSL
import Testing

/// The coordinator's front door: mutual TLS with the site CA, identities and roles from
/// certificates, and every refusal with a reason.
@Suite(.timeLimit(.minutes(2)))
struct CoordinatorServerTests {
    static let register = try! WireJSON.encoder().encode(
        RegisterRequest(
            version: "0.1.0", storePath: "/srv/store", diskTotal: 1000, diskFree: 600, kinds: ["svn", "git"]))

    @Test func anAgentRegistersAndSendsHeartbeatsAndAnOperatorSeesItOnline() async throws {
        try await withTemporaryDirectory("coord") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("alice", .operator)
            try await site.serving { port in
                try await site.withClient(as: "srv1") { client in
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: Self.register)
                    #expect(status == 200, "\(body)")
                    let answer = try WireJSON.decoder().decode(RegisterResponse.self, from: Data(body.utf8))
                    #expect(answer.heartbeatSeconds == 15)
                    #expect(abs(answer.serverTime.timeIntervalSinceNow) < 60)
                    // This agent's clock runs 120 s ahead of the coordinator's.
                    let beat = try WireJSON.encoder().encode(
                        HeartbeatRequest(diskFree: 500, agentClock: Date().timeIntervalSince1970 + 120))
                    #expect(
                        try await CoordinatorHarness.send(client, .post, port: port, "/v1/agents/heartbeat", body: beat)
                            .0 == 200)
                }
                try await site.withClient(as: "alice") { client in
                    let (status, body) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/nodes")
                    #expect(status == 200, "\(body)")
                    let nodes = try WireJSON.decoder().decode([NodeStatus].self, from: Data(body.utf8))
                    // Every configured node is listed; only srv1 has registered.
                    #expect(nodes.map(\.name) == CoordinatorHarness.site.nodes.keys.sorted())
                    #expect(nodes.filter(\.online).map(\.name) == ["srv1"])
                    let srv1 = try #require(nodes.first { $0.name == "srv1" })
                    #expect(srv1.diskFree == 500)
                    #expect(srv1.kinds == ["svn", "git"])
                    #expect(srv1.roles == ["server"])
                    let offset = try #require(srv1.clockOffsetSeconds)
                    // 120 s ahead, less the time the heartbeat took to arrive (seconds on a loaded machine).
                    #expect(offset > 60 && offset <= 120.5, "the clock offset is measured: \(offset)")
                    let vault = try #require(nodes.first { $0.name == "vault" })
                    #expect(vault.roles == ["backup"] && vault.lastHeartbeatAt == nil && !vault.online)
                }
            }
        }
    }

    @Test func theCatalogSurvivesARestart() async throws {
        try await withTemporaryDirectory("coord-restart") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("alice", .operator)
            try await site.serving { port in
                let status = try await site.withClient(as: "srv1") { client in
                    try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: Self.register
                    ).0
                }
                #expect(status == 200)
            }
            try await site.serving { port in
                let body = try await site.withClient(as: "alice") { client in
                    try await CoordinatorHarness.send(client, .get, port: port, "/v1/nodes").1
                }
                #expect(body.contains("\"name\":\"srv1\""))
            }
        }
    }

    /// The TLS handshake (or the first read, with TLS 1.3) fails for these clients.
    @Test(arguments: ["none", "other-ca", "expired"])
    func aClientWithoutAValidSiteCertificateIsRefusedAtTheHandshake(_ case_: String) async throws {
        try await withTemporaryDirectory("coord-tls") { (dir: TemporaryDirectory) async throws in
            let site = try CoordinatorHarness(dir)
            var name: String? = "intruder"
            switch case_ {
            case "none": name = nil
            case "other-ca":
                let other = try SiteCA.initialise(at: dir.file("other-ca"), site: "other")
                _ = try other.issue(name: "intruder", role: .agent, output: dir.file("certs"))
            default:
                try site.issue("intruder", .agent, now: Date().addingTimeInterval(-10 * 86400), days: 1)
            }
            let client = name
            try await site.serving { port in
                do {
                    let status = try await site.withClient(as: client) { http in
                        try await CoordinatorHarness.send(http, .get, port: port, "/v1/nodes").0
                    }
                    Issue.record("a client with \(case_) certificate got status \(status)")
                } catch {
                    // Refused by TLS: BoringSSL's alert at the handshake or first read, or the closed connection.
                    let text = String(describing: error)
                    #expect(
                        ["SSL", "CERTIFICATE", "remoteConnectionClosed", "handshake"].contains { text.contains($0) },
                        "\(text)")
                }
            }
        }
    }

    @Test func refusalsAreAnsweredWithAStatusAndAReason() async throws {
        try await withTemporaryDirectory("coord-refusals") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("alice", .operator)
            let revoked = try site.issue("srv9", .agent)
            try site.ca.revoke(serial: revoked.serial)
            try site.issue("stranger", .agent)
            try await site.serving { port in
                try await site.withClient(as: "srv1") { client in
                    let asOperator = try await CoordinatorHarness.send(client, .get, port: port, "/v1/nodes")
                    #expect(asOperator.0 == 403)
                    #expect(asOperator.1.contains("\"code\":\"wrong-role\""))
                    #expect(asOperator.1.contains("agent certificate 'srv1' may not list nodes"))

                    let early = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/heartbeat", body: Data(#"{"diskFree": 1}"#.utf8))
                    #expect(early.0 == 409)
                    #expect(early.1.contains("must register"))

                    let malformed = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register",
                        body: Data(#"{"version": "1", "storePath": "/s"}"#.utf8))
                    #expect(malformed.0 == 400)
                    #expect(malformed.1.contains("field \\\"diskTotal\\\" is missing"), "\(malformed.1)")
                    let wrongType = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/heartbeat", body: Data(#"{"diskFree": "lots"}"#.utf8))
                    #expect(wrongType.0 == 400)
                    #expect(wrongType.1.contains("diskFree"))

                    let huge = Data(repeating: 0x20, count: CoordinatorServer.maxBodyBytes + 1)
                    let tooLarge = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: huge)
                    #expect(tooLarge.0 == 413)

                    let future = try await CoordinatorHarness.send(client, .get, port: port, "/v2/nodes")
                    #expect(future.0 == 404)
                    #expect(future.1.contains("API version v2 is not supported; this coordinator speaks v1"))
                }
                try await site.withClient(as: "alice") { client in
                    let register = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: Self.register)
                    #expect(register.0 == 403)
                    #expect(register.1.contains("operator certificate 'alice' may not register as an agent"))

                    let badState = try await CoordinatorHarness.send(client, .get, port: port, "/v1/tasks?state=done")
                    #expect(badState.0 == 400)
                    #expect(
                        badState.1.contains("invalid-argument") && badState.1.contains("'done' is not a task state"))
                    let badLimit = try await CoordinatorHarness.send(client, .get, port: port, "/v1/events?limit=-1")
                    #expect(badLimit.0 == 400)
                    #expect(badLimit.1.contains("limit='-1' is not a number from 1 to 10000"))
                    let page = try await CoordinatorHarness.send(
                        client, .get, port: port, "/v1/tasks?state=queued,leased&before=10&limit=5")
                    #expect(page.0 == 200 && page.1 == "[]")
                }
                try await site.withClient(as: "stranger") { client in
                    let refused = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: Self.register)
                    #expect(refused.0 == 403)
                    #expect(refused.1.contains("Node 'stranger' is not in the site configuration"))
                }
                try await site.withClient(as: "srv9") { client in
                    let refused = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/register", body: Self.register)
                    #expect(refused.0 == 403)
                    #expect(refused.1.contains("certificate-revoked"))
                    #expect(refused.1.contains(revoked.serial))
                }
            }
        }
    }

    @Test func theServerSpeaksHTTP2AndHTTP1WithTheSameIdentities() async throws {
        try await withTemporaryDirectory("coord-h2") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("alice", .operator)
            try site.issue("srv1", .agent)
            try await site.serving { port in
                for (version, expected) in [(HTTPClient.Configuration.HTTPVersion.automatic, 2), (.http1Only, 1)] {
                    try await site.withClient(as: "alice", httpVersion: version) { client in
                        let response = try await client.execute(
                            HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/nodes"),
                            timeout: TestClient.requestTimeout)
                        #expect(response.version.major == expected)
                        #expect(response.status == .ok)
                    }
                    try await site.withClient(as: "srv1", httpVersion: version) { client in
                        let response = try await client.execute(
                            HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/nodes"),
                            timeout: TestClient.requestTimeout)
                        #expect(response.version.major == expected)
                        #expect(response.status == .forbidden, "the agent's identity is read on \(expected) too")
                    }
                }
            }
        }
    }
}
