import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// The purge endpoints over real mutual TLS (issue 13): who may read plans and who may change
/// anything, each refusal with its code; a release accepts only a flagged newest backup, once;
/// a trash order names only store-relative paths. Every change is audited.
struct PurgeHTTPTests {
    static func report(_ stamp: String, flagged: Bool) -> ArtifactReport {
        let path = "srv1/svn/env/\(stamp)/env-r\(flagged ? 3 : 40).tar.gz"
        return ArtifactReport(
            complete: false,
            copies: [
                CopyReport(
                    path: path, origin: "srv1", kind: "svn", source: "env", stamp: stamp, size: 10,
                    sha256: String(repeating: "a", count: 64), md5: nil, revision: flagged ? "3" : "40",
                    created: Date(),
                    state: .intact, verifiedAt: Date(),
                    regressions: flagged ? ["revision went backwards from 40 to 3"] : nil)
            ])
    }

    @Test func onlyAdminsChangePurgingAndEachRefusalNamesItsCode() async throws {
        try await withTemporaryDirectory("purge-http") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("alice", .operator)
            try site.issue("root", .admin)
            try site.issue("srv1", .agent)
            // srv1/env: a good backup, then one whose revision went backwards.
            let catalog = try Catalog(path: site.configuration.database)
            for (stamp, flagged) in [("2027/01/14/020000", false), ("2027/01/15/020000", true)] {
                try await catalog.record(
                    Self.report(stamp, flagged: flagged), node: "srv1", authority: .originBackup(sources: ["env"]),
                    now: Date())
            }
            try await site.serving { port in
                let send = CoordinatorHarness.send
                // An operator reads, and changes nothing.
                try await site.withClient(as: "alice") { http in
                    let plan = try await send(http, .get, port, "/v1/purge/plan?node=srv1", nil)
                    #expect(plan.0 == 200 && plan.1.contains("purge release --source env --origin srv1"), "\(plan.1)")
                    for (path, body) in [
                        ("/v1/purge/apply", #"{"node":"srv1"}"#), ("/v1/purge/pause", "{}"),
                        ("/v1/purge/resume", "{}"), ("/v1/purge/release", #"{"origin":"srv1","source":"env"}"#),
                        ("/v1/trash", #"{"node":"srv1","order":{}}"#),
                    ] {
                        let refused = try await send(http, .post, port, path, Data(body.utf8))
                        #expect(
                            refused.0 == 403 && refused.1.contains("\"code\":\"wrong-role\""), "\(path): \(refused.1)")
                    }
                }
                // An agent reads no plan.
                try await site.withClient(as: "srv1") { http in
                    let refused = try await send(http, .get, port, "/v1/purge/plan?node=srv1", nil)
                    #expect(refused.0 == 403 && refused.1.contains("wrong-role"))
                }
                try await site.withClient(as: "root") { http in
                    let unknown = try await send(http, .get, port, "/v1/purge/plan?node=nowhere", nil)
                    #expect(unknown.0 == 422 && unknown.1.contains("unknown-node") && unknown.1.contains("'nowhere'"))
                    let noNode = try await send(http, .get, port, "/v1/purge/plan", nil)
                    #expect(noNode.0 == 400 && noNode.1.contains("?node=NAME"))
                    // The flagged newest backup is accepted once; then there is nothing to release.
                    let release = Data(#"{"origin":"srv1","source":"env"}"#.utf8)
                    let accepted = try await send(http, .post, port, "/v1/purge/release", release)
                    #expect(accepted.0 == 200 && accepted.1.contains("2027/01/15/020000"), "\(accepted.1)")
                    let again = try await send(http, .post, port, "/v1/purge/release", release)
                    #expect(again.0 == 422 && again.1.contains("not-flagged"), "\(again.1)")
                    let plan = try await send(http, .get, port, "/v1/purge/plan?node=srv1", nil)
                    #expect(!plan.1.contains("purge release --source env"), "the hold is lifted: \(plan.1)")
                    let noSource = try await send(
                        http, .post, port, "/v1/purge/release", Data(#"{"origin":"srv1","source":"nope"}"#.utf8))
                    #expect(noSource.0 == 422 && noSource.1.contains("unknown-source"))
                    // A trash order names store-relative artifact paths only.
                    let escape = try await send(
                        http, .post, port, "/v1/trash",
                        Data(#"{"node":"srv1","order":{"restore":["../../etc/passwd"]}}"#.utf8))
                    #expect(escape.0 == 422 && escape.1.contains("invalid-argument"), "\(escape.1)")
                    // Pause and resume, site-wide and per node; the plan says so while on.
                    let paused = try await send(
                        http, .post, port, "/v1/purge/pause", Data(#"{"node":"srv1","reason":"disk swap"}"#.utf8))
                    #expect(paused.0 == 200 && paused.1.contains("disk swap"))
                    let shown = try await send(http, .get, port, "/v1/purge/plan?node=srv1", nil)
                    #expect(shown.1.contains("purging is paused on srv1 by root"), "\(shown.1)")
                    let unknownPause = try await send(
                        http, .post, port, "/v1/purge/pause", Data(#"{"node":"nowhere"}"#.utf8))
                    #expect(unknownPause.0 == 422)
                    let resumed = try await send(http, .post, port, "/v1/purge/resume", Data(#"{"node":"srv1"}"#.utf8))
                    #expect(resumed.0 == 200 && resumed.1 == "[]", "\(resumed.1)")
                    let events = try await send(http, .get, port, "/v1/events?limit=20", nil)
                    for request in ["POST /v1/purge/release", "POST /v1/purge/pause", "POST /v1/purge/resume"] {
                        #expect(events.1.contains(request), "\(request) is audited")
                    }
                }
            }
        }
    }
}
