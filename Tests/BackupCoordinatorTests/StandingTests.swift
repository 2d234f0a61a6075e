import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import GRDB
import Testing

@testable import BackupCoordinator

/// The one definition each of verified, verify-overdue and late (``Standing``), and what a
/// source's agent would refuse (``AgentReadiness``).
struct StandingTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let day: TimeInterval = 86_400

    func copy(_ state: CopyState, verifiedDaysAgo: Double?) -> CopyInfo {
        CopyInfo(
            node: "vault", path: "p", size: 1, state: state, seenAt: now,
            verifiedAt: verifiedDaysAgo.map { now.addingTimeInterval(-$0 * day) }, problem: nil)
    }

    @Test func aCopyIsVerifiedWhenIntactAndVerifiedWithinMaxAgeAndOverdueAfter() {
        let maxAge = 30 * day
        #expect(Standing.isVerified(copy(.intact, verifiedDaysAgo: 29), now: now, maxAge: maxAge))
        #expect(!Standing.isVerified(copy(.intact, verifiedDaysAgo: 31), now: now, maxAge: maxAge))
        #expect(Standing.isVerifyOverdue(copy(.intact, verifiedDaysAgo: 31), now: now, maxAge: maxAge))
        #expect(Standing.isVerifyOverdue(copy(.intact, verifiedDaysAgo: nil), now: now, maxAge: maxAge))
        // A bad copy is neither: it is bad.
        #expect(!Standing.isVerified(copy(.mutant, verifiedDaysAgo: 1), now: now, maxAge: maxAge))
        #expect(!Standing.isVerifyOverdue(copy(.quarantined, verifiedDaysAgo: 40), now: now, maxAge: maxAge))
    }

    @Test func aSourceIsLateOnlyOnceTheGraceAfterItsSlotPassedWithoutANewerArtifact() {
        let slot = now.addingTimeInterval(-7 * 3600)
        let grace: TimeInterval = 6 * 3600
        let older = slot.addingTimeInterval(-day)
        #expect(Standing.isLate(newestMadeAt: older, lastFire: slot, now: now, grace: grace))
        #expect(!Standing.isLate(newestMadeAt: slot.addingTimeInterval(60), lastFire: slot, now: now, grace: grace))
        #expect(!Standing.isLate(newestMadeAt: older, lastFire: slot, now: slot.addingTimeInterval(3600), grace: grace))
        #expect(Standing.isLate(newestMadeAt: nil, lastFire: slot, now: now, grace: grace))
        #expect(!Standing.isLate(newestMadeAt: nil, lastFire: nil, now: now, grace: grace), "off: never late")
    }

    @Test func aSourceOutsideTheRootsOrWithAStepTheAgentLacksIsNamed() {
        let source = SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env")
        #expect(AgentReadiness.refusal(source, node: "cms", roots: ["/var/scm"], steps: []) == nil)
        #expect(
            AgentReadiness.refusal(source, node: "cms", roots: ["/var/scm/re"], steps: [])?.contains("outside") == true)
        #expect(AgentReadiness.refusal(source, node: "cms", roots: [], steps: [])?.contains("no source_roots") == true)
        var stepped = source
        stepped.preBackup = "trim"
        #expect(
            AgentReadiness.refusal(stepped, node: "cms", roots: ["/"], steps: ["vacuum"])?.contains("'trim'") == true)
        #expect(AgentReadiness.refusal(stepped, node: "cms", roots: ["/"], steps: ["trim"]) == nil)
        #expect(
            AgentReadiness.refusal(stepped, node: "cms", roots: nil, steps: nil) == nil, "an agent that said nothing")
    }

    @Test func whatAnAgentReportedIsJudgedAndADamagedReportIsNamed() async throws {
        try await withTemporaryDirectory("readiness") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            try await catalog.register(
                name: "srv1", role: .agent,
                RegisterRequest(
                    version: "1.0.0", storePath: "/s", diskTotal: 1, diskFree: 1, kinds: [], sourceRoots: ["/var/scm"],
                    preBackupSteps: []), now: now)
            let site = SiteConfiguration(nodes: [
                .init(
                    name: "srv1", roles: [.server],
                    sources: [
                        "env": SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env"),
                        "etc": SourceDefinition(name: "etc", kind: .folder, path: "/etc/scm"),
                    ])
            ])
            let refusals = try await catalog.sourceRefusals(site)
            #expect(Array(refusals.keys) == ["srv1/etc"])
            try await catalog.pool.write { db in
                try db.execute(sql: "UPDATE node SET sourceRoots = '{not a list' WHERE name = 'srv1'")
            }
            let error = try await #require(throws: BackupError.self) { try await catalog.sourceRefusals(site) }
            #expect(error.message.contains("sourceRoots of node 'srv1'"), "\(error.message)")
        }
    }
}
