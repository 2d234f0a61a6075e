import AsyncHTTPClient
import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

/// The hub's side of agents on their own (issue 14, item 5), through the real server: the plan
/// each agent is given holds its own scheduled sources only; a report of what it made is
/// believed only for its own sources (another node's artifact, or a source it does not have, is
/// refused), and only agents send one.
@Suite(.timeLimit(.minutes(2)))
struct FallbackHTTPTests {
    static let register = try! WireJSON.encoder().encode(
        RegisterRequest(version: "0.3.0", storePath: "/srv/store", diskTotal: 1000, diskFree: 600, kinds: ["svn"]))

    static func copy(_ origin: String, _ source: String, stamp: String = "2026/12/04/030000") -> CopyReport {
        CopyReport(
            path: "\(origin)/svn/\(source)/\(stamp)/\(source)-7.tar.gz", origin: origin, kind: "svn", source: source,
            stamp: stamp, size: 1234, sha256: String(repeating: "ab", count: 32), md5: nil, revision: "7",
            created: Date(timeIntervalSince1970: 1_796_000_000), state: .intact)
    }

    @Test func anAgentsPlanIsItsOwnAndItsReportIsBelievedOnlyForItsOwnSources() async throws {
        try await withTemporaryDirectory("fallback-http") { dir in
            let site = try CoordinatorHarness(dir)
            for name in ["srv1", "srv2"] { try site.issue(name, .agent) }
            try site.issue("root", .admin)
            let nightly = try SourceSchedule("0 3 * * *", zone: "UTC", source: "env")
            try await site.serving(configure: { config in config.site.nodes["srv1"]?.schedules["env"] = nightly }) {
                port in
                let plans = try await ["srv1", "srv2"].asyncMap { name in
                    try await site.withClient(as: name) { client in
                        let (status, body) = try await CoordinatorHarness.send(
                            client, .post, port: port, "/v1/agents/register", body: Self.register)
                        #expect(status == 200, "\(body)")
                        return try WireJSON.decoder().decode(RegisterResponse.self, from: Data(body.utf8)).fallback
                    }
                }
                #expect(plans[0]?.node == "srv1" && plans[0]?.entries.map(\.cron) == ["0 3 * * *"])
                #expect(plans[0]?.entries.first?.definition.path == "/var/scm/repos/env")
                #expect(plans[1]?.node == "srv2" && plans[1]?.entries.isEmpty == true, "srv2's env has no schedule")

                let slot = Date(timeIntervalSince1970: 1_796_007_600)
                try await site.withClient(as: "srv1") { client in
                    // Its own artifact, another node's, and one of a source srv1 does not have.
                    let report = FallbackReport(
                        source: "env", slot: slot, madeAt: slot.addingTimeInterval(90), detail: "backed up env",
                        artifacts: ArtifactReport(
                            complete: false,
                            copies: [Self.copy("srv1", "env"), Self.copy("srv2", "env"), Self.copy("srv1", "ghost")]))
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/fallback", body: try WireJSON.encoder().encode(report))
                    #expect(status == 200, "\(body)")
                    var unknown = report
                    unknown.source = "ghost"
                    let (uStatus, uBody) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/fallback", body: try WireJSON.encoder().encode(unknown))
                    #expect(uStatus == 422 && uBody.contains("unknown-source") && uBody.contains("ghost"), "\(uBody)")
                }
                try await site.withClient(as: "root") { client in
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/agents/fallback",
                        body: try WireJSON.encoder().encode(
                            FallbackReport(
                                source: "env", slot: slot, madeAt: slot, detail: "",
                                artifacts: ArtifactReport(complete: false, copies: [Self.copy("srv2", "env")]))))
                    #expect(status == 403 && body.contains("wrong-role"), "only an agent reports its own backups")
                    let (_, listed) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/artifacts")
                    let artifacts = try WireJSON.decoder().decode([ArtifactInfo].self, from: Data(listed.utf8))
                    #expect(
                        artifacts.map { "\($0.origin)/\($0.source)" } == ["srv1/env"],
                        "only srv1's own env: \(artifacts.map { "\($0.origin)/\($0.source)" })")
                    #expect(
                        artifacts.first?.sha256 == String(repeating: "ab", count: 32), "its digest is the reference")
                    let (_, schedules) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/schedules")
                    #expect(schedules.contains("made by the agent on its own"), "\(schedules)")
                }
            }
        }
    }
}

/// Only an admin silences alerts or sends a test notice; an operator reads them; an agent does neither.
// Three minutes, like its neighbours: under a full parallel run on two cores the first requests
// of a harness can wait half a minute for the cooperative pool (seen once at 79 s).
@Suite(.timeLimit(.minutes(3)))
struct AlertHTTPTests {
    @Test func onlyAnAdminSilencesAndAnOperatorOnlyReads() async throws {
        try await withTemporaryDirectory("alerts-http") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("alice", .operator)
            try site.issue("srv1", .agent)
            try site.issue("root", .admin)
            let silence = try WireJSON.encoder().encode(
                SilenceRequest(rule: .diskLow, node: "vault", seconds: 3600, reason: "new disk"))
            try await site.serving { port in
                for name in ["alice", "srv1"] {
                    try await site.withClient(as: name) { client in
                        let (status, body) = try await CoordinatorHarness.send(
                            client, .post, port: port, "/v1/alerts/silence", body: silence)
                        #expect(status == 403 && body.contains("wrong-role"), "\(name): \(body)")
                        let (test, _) = try await CoordinatorHarness.send(client, .post, port: port, "/v1/alerts/test")
                        #expect(test == 403)
                    }
                }
                try await site.withClient(as: "srv1") { client in
                    let (status, _) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/alerts")
                    #expect(status == 403, "an agent does not read the site's alerts")
                }
                try await site.withClient(as: "alice") { client in
                    let (status, _) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/alerts")
                    #expect(status == 200)
                }
                try await site.withClient(as: "root") { client in
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/alerts/silence", body: silence)
                    #expect(status == 201, "\(body)")
                    let unknown = try WireJSON.encoder().encode(
                        SilenceRequest(rule: .diskLow, node: "ghost", seconds: 3600, reason: "x"))
                    let (uStatus, uBody) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/alerts/silence", body: unknown)
                    #expect(uStatus == 422 && uBody.contains("ghost"), "\(uBody)")
                    let (_, events) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/events")
                    #expect(events.contains("POST /v1/alerts/silence"))
                }
            }
        }
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
