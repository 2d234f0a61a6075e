import BackupCore
import BackupProtocol
import BackupTesting
import Crypto
import Foundation
import Testing

@testable import BackupCoordinator

/// The purge stage's decisions as tables of catalogs and clocks (``PurgePlanner``): retention
/// per holder, catch-up nights, a dead server, zones and week starts, regressions and their
/// release, the `copies` floor with fresh and stale evidence, unreplicated artifacts, orphans,
/// copies a task reads and the pause switches. No SQLite, no sockets.
struct PurgePlannerTests {
    /// 2027-01-15 08:00 UTC, a Friday.
    let now = Date(timeIntervalSince1970: 1_800_000_000 + 86_400 * 0)

    static func site(_ retention: String, zone: String = "UTC", copies: Int? = nil) throws -> SiteConfiguration {
        try SiteScheduleTests.site(
            """
            [schedule]
            default = "0 2 * * *"
            time_zone = "\(zone)"
            \(retention)
            [nodes.srv]
            roles = ["server"]
            [nodes.srv.sources.conf]
            kind = "folder"
            path = "/etc/scm"
            \(copies.map { "copies = \($0)" } ?? "")
            [nodes.v1]
            roles = ["backup"]
            [nodes.v2]
            roles = ["backup"]
            [nodes.stray]
            roles = ["backup"]
            [[pairings]]
            server = "srv"
            backup = "v1"
            [[pairings]]
            server = "srv"
            backup = "v2"
            """)
    }

    /// An artifact made `hoursAgo` before `now` (by the origin's clock), with a copy on each of
    /// `on`: intact and verified `verifiedAgo` hours ago unless said otherwise.
    func artifact(
        _ id: Int64, hoursAgo: Double, on nodes: [String] = ["srv", "v1", "v2"], verifiedAgo: Double = 1,
        states: [String: CopyState] = [:], regressions: [String]? = nil, arrivedHoursAgo: Double? = nil
    ) -> ArtifactInfo {
        let created = now.addingTimeInterval(-hoursAgo * 3600)
        let stamp = ArtifactLocation.stamp(for: created)
        let path = "srv/folder/conf/\(stamp)/conf.tar.gz"
        return ArtifactInfo(
            origin: "srv", kind: "folder", source: "conf", stamp: stamp, fileName: "conf.tar.gz", size: 10,
            sha256: "ab", md5: nil, revision: nil, created: created,
            copies: nodes.map { node in
                CopyInfo(
                    node: node, path: path, size: 10, state: states[node] ?? .intact,
                    seenAt: now.addingTimeInterval(-verifiedAgo * 3600),
                    verifiedAt: now.addingTimeInterval(-verifiedAgo * 3600), problem: nil)
            }, confirmed: true, id: id, regressions: regressions,
            firstSeenAt: now.addingTimeInterval(-(arrivedHoursAgo ?? hoursAgo) * 3600))
    }

    func plan(
        _ site: SiteConfiguration, _ node: String, _ artifacts: [ArtifactInfo], reads: [String: String] = [:],
        released: [String: Int64] = [:], pauses: [PurgePause] = [], at: Date? = nil
    ) -> PurgePlan {
        PurgePlanner.plan(
            .init(
                node: node, artifacts: artifacts, reads: reads, released: released, pauses: pauses, now: at ?? now),
            site: site)
    }

    /// The stamps (hours ago) the plan deletes.
    func deleted(_ plan: PurgePlan, _ artifacts: [ArtifactInfo]) -> [Int64] {
        let ids = Dictionary(
            artifacts.flatMap { a in a.copies.map { ($0.path, a.id!) } }, uniquingKeysWith: { a, _ in a })
        return plan.deletions.map { ids[$0.path]! }.sorted()
    }

    @Test func keepLastOnEveryNodeAndABackupNodeMayKeepLonger() throws {
        var site = try Self.site("[retention]\nkeep_last = 2")
        let history = (0..<6).map { artifact(Int64($0), hoursAgo: Double($0) * 24 + 2) }
        #expect(deleted(plan(site, "srv", history), history) == [2, 3, 4, 5])
        #expect(deleted(plan(site, "v1", history), history) == [2, 3, 4, 5])
        site.nodes["v2"]!.holderRetention = .init(keepLast: 4)
        #expect(deleted(plan(site, "v2", history), history) == [4, 5])
        #expect(deleted(plan(site, "srv", history), history) == [2, 3, 4, 5])
        let kept = plan(site, "srv", history).copies.first { !$0.delete }
        #expect(kept?.reasons == ["retention: last 2"])
    }

    @Test func noRetentionConfiguredKeepsEverything() throws {
        let site = try Self.site("")
        let history = (0..<4).map { artifact(Int64($0), hoursAgo: Double($0) * 24) }
        let p = plan(site, "srv", history)
        #expect(p.deletions.isEmpty && p.copies.count == 4)
        #expect(p.copies[0].reasons[0].contains("no retention applies"))
    }

    @Test func aBackupNodeCatchingUpAWeekInOneNightKeepsOnePerDay() throws {
        let site = try Self.site("[retention]\nkeep_last = 1\nkeep_daily = 7")
        // Two backups a day for a week; v1 was away and received them all within the last hour.
        let week = (0..<14).map { i in artifact(Int64(i), hoursAgo: Double(i) * 12 + 2, verifiedAgo: 0.5) }
        let p = plan(site, "v1", week)
        // By creation, not arrival: 0 (06:00 on the 15th) is alone in its day, then each
        // day's newest is its 18:00 one (1, 3, ...); seven days end with the 9th's.
        #expect(deleted(p, week) == [2, 4, 6, 8, 10, 12, 13])
    }

    @Test func aDeadServersLastBackupsAreNeverAgedOut() throws {
        let site = try Self.site("[retention]\nkeep_within = \"7d\"")
        // The server died 30 days ago; its last 10 days of backups are on the backup nodes.
        let history = (0..<10).map { artifact(Int64($0), hoursAgo: Double(30 + $0) * 24, on: ["v1", "v2"]) }
        let p = plan(site, "v1", history)
        // Anchored at the newest good artifact: 8 of them lie within 7 days of it.
        #expect(deleted(p, history) == [8, 9])
    }

    @Test func dailyBucketsFollowTheSourcesZoneAndWeeksStartOnMonday() throws {
        // 2027-01-15 is a Friday. In Berlin, 23:30 UTC on Sunday 10 January is already Monday 11.
        let sundayLateUTC = Date(timeIntervalSince1970: 1_800_000_000 - 4 * 86_400 - 8.5 * 3600)
        let mondayUTC = sundayLateUTC.addingTimeInterval(3 * 3600)
        func at(_ d: Date, _ id: Int64) -> ArtifactInfo {
            artifact(id, hoursAgo: now.timeIntervalSince(d) / 3600)
        }
        let two = [at(mondayUTC, 1), at(sundayLateUTC, 2)]
        let utc = try Self.site("[retention]\nkeep_weekly = 2")
        let berlin = try Self.site("[retention]\nkeep_weekly = 2", zone: "Europe/Berlin")
        // In UTC the two fall in two ISO weeks (Sunday ends one): both kept.
        #expect(deleted(plan(utc, "srv", two), two) == [])
        // In Berlin both are on Monday 11 January: one week, the newer kept.
        #expect(deleted(plan(berlin, "srv", two), two) == [2])
        let reasons = plan(berlin, "srv", two).copies.first { !$0.delete }?.reasons ?? []
        #expect(reasons.contains { $0.contains("weekly") && $0.contains("W") }, "\(reasons)")
    }

    @Test func nothingGoesAnywhereBeforeItHasItsVerifiedCopiesWithFreshEvidence() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        // v2 never got the two older ones.
        let history = [
            artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 26, on: ["srv", "v1"]),
            artifact(2, hoursAgo: 50, on: ["srv", "v1"]),
        ]
        let p = plan(site, "srv", history)
        #expect(p.deletions.isEmpty)
        let held = p.copies.first { $0.path.contains(history[1].stamp) }!
        #expect(held.reasons.contains { $0.contains("only 1 of 2") && $0.contains("v2 (no copy)") }, "\(held.reasons)")
        #expect(p.heldBackBy.count == 1 && p.heldBackBy[0].hasPrefix("v2: lacks fresh verified copies of 2"))
        // v1's copies are held too (nothing goes anywhere).
        #expect(plan(site, "v1", history).deletions.isEmpty)
        // With copies = 1 the origin may purge them.
        let one = try Self.site("[retention]\nkeep_last = 1", copies: 1)
        #expect(deleted(plan(one, "srv", history), history) == [1, 2])
    }

    @Test func staleEvidenceDeletesNothingThatDependsOnIt() throws {
        let site = try Self.site("[retention]\nkeep_last = 1\npurge_evidence_age = \"48h\"")
        // Verified on the backup nodes 3 days ago and not seen since: not counted.
        let history = [artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 100, verifiedAgo: 72)]
        let p = plan(site, "srv", history)
        #expect(p.deletions.isEmpty)
        let why = p.copies.first { $0.path.contains(history[1].stamp) }!.reasons.joined()
        #expect(why.contains("evidence older than purge_evidence_age"), "\(why)")
        // Seen within 48 hours: it goes.
        let fresh = [artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 100, verifiedAgo: 20)]
        #expect(deleted(plan(site, "srv", fresh), fresh) == [1])
    }

    @Test func anUnreplicatedArtifactGoesOnlyPastAllowUnreplicatedPurgeAfter() throws {
        let history = [artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 24 * 40, on: ["srv"])]
        let never = try Self.site("[retention]\nkeep_last = 1")
        #expect(plan(never, "srv", history).deletions.isEmpty)
        let allowed = try Self.site("[retention]\nkeep_last = 1\nallow_unreplicated_purge_after = \"30d\"")
        #expect(deleted(plan(allowed, "srv", history), history) == [1])
    }

    @Test func theNewestVerifiedCopyStaysWhateverThePolicySays() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        // The newest is not verified on srv (the policy's slot), so the next one is srv's
        // newest verified copy; a mutant is kept for repair whatever its age.
        let history = [
            artifact(0, hoursAgo: 2, states: ["srv": .unverified]), artifact(1, hoursAgo: 26),
            artifact(2, hoursAgo: 50),
            artifact(3, hoursAgo: 74, states: ["srv": .mutant]),
        ]
        let p = plan(site, "srv", history)
        #expect(deleted(p, history) == [2])
        #expect(p.copies.first { $0.path.contains(history[3].stamp) }!.reasons[0].contains("quarantine and repair"))
        #expect(
            p.copies.first { $0.path.contains(history[1].stamp) }!.reasons == [
                "the newest verified copy of srv/conf on srv"
            ])
    }

    @Test func aRegressionHoldsTheWholeSourceUntilReleased() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        let history =
            [artifact(9, hoursAgo: 1, regressions: ["size collapsed from 900000 to 10 bytes"])]
            + (0..<4).map { artifact(Int64($0), hoursAgo: Double($0 + 1) * 24) }
        let held = plan(site, "srv", history)
        #expect(held.deletions.isEmpty)
        #expect(held.holds.count == 1 && held.holds[0].contains("purge release --source conf --origin srv"))
        // Released: the flagged one is the baseline and counts as good.
        let released = plan(site, "srv", history, released: ["srv/conf": 9])
        #expect(released.holds.isEmpty)
        #expect(deleted(released, history) == [0, 1, 2, 3])
        // A newer flagged backup after the release holds again.
        let again = history + [artifact(10, hoursAgo: 0.5, regressions: ["revision went backwards from 9 to 3"])]
        #expect(plan(site, "srv", again, released: ["srv/conf": 9]).deletions.isEmpty)
    }

    @Test func aCopyATaskReadsStays() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        let history = [artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 26), artifact(2, hoursAgo: 50)]
        let p = plan(site, "srv", history, reads: [history[1].copies[0].path: "transfer task 7"])
        #expect(deleted(p, history) == [2])
        #expect(p.copies.first { $0.path.contains(history[1].stamp) }!.reasons == ["read by transfer task 7"])
        let whole = plan(site, "srv", history, reads: ["*": "verify task 8 (the whole store)"])
        #expect(whole.deletions.isEmpty)
    }

    @Test func orphanCopiesArePurgedByPolicyAndNeverCountTowardCopies() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        // v2 was unpaired; its copies now sit on "stray" (not paired with srv).
        let history = [
            artifact(0, hoursAgo: 2, on: ["srv", "v1", "v2", "stray"]),
            artifact(1, hoursAgo: 26, on: ["srv", "v1", "stray"]),
        ]
        let stray = plan(site, "stray", history)
        #expect(stray.copies.allSatisfy { $0.orphan == true })
        // The older is held by v2's lack, not helped by the orphan copy.
        #expect(stray.deletions.isEmpty)
        #expect(stray.heldBackBy.first?.hasPrefix("v2:") == true)
    }

    @Test func aPauseIsShownAndTheDeletionsStillListed() throws {
        let site = try Self.site("[retention]\nkeep_last = 1")
        let history = [artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 26)]
        let pause = PurgePause(node: nil, by: "admin", at: now, reason: "disk swap")
        let p = plan(site, "srv", history, pauses: [pause])
        #expect(p.paused?.contains("site-wide by admin") == true && p.paused?.contains("disk swap") == true)
        #expect(deleted(p, history) == [1])
        let other = plan(site, "srv", history, pauses: [PurgePause(node: "v1", by: "admin", at: now, reason: nil)])
        #expect(other.paused == nil)
    }

    @Test func aRetentionThatKeepsNothingIsAConfigErrorNamingTheKey() throws {
        let site = #expect(throws: BackupError.self) { try Self.site("[retention]\nkeep_last = 0") }
        #expect(site?.message.contains("retention.keep_last") == true, "\(site?.message ?? "-")")
        let source = #expect(throws: BackupError.self) {
            try SiteScheduleTests.site(
                """
                [retention]
                keep_last = 3
                [nodes.srv]
                roles = ["server"]
                [nodes.srv.sources.conf]
                kind = "folder"
                path = "/etc/scm"
                [nodes.srv.sources.conf.retention]
                keep_last = 0
                """)
        }
        #expect(
            source?.message.contains("nodes.srv.sources.conf.retention.keep_last") == true, "\(source?.message ?? "-")")
        let bad = #expect(throws: BackupError.self) { try Self.site("[retention]\nkeep_within = \"soon\"") }
        #expect(bad?.message.contains("keep_within") == true && bad?.message.contains("'soon'") == true)
        let server = #expect(throws: BackupError.self) {
            try SiteScheduleTests.site(
                """
                [nodes.srv]
                roles = ["server"]
                [nodes.srv.retention]
                keep_last = 3
                """)
        }
        #expect(server?.message.contains("only a backup node") == true)
        // Laid over key by key: the source keeps 5 daily, the site's keep_last stays.
        let layered = try SiteScheduleTests.site(
            """
            [retention]
            keep_last = 3
            [nodes.srv]
            roles = ["server"]
            [nodes.srv.sources.conf]
            kind = "folder"
            path = "/etc/scm"
            [nodes.srv.sources.conf.retention]
            keep_daily = 5
            """)
        let policy = try #require(layered.retention(origin: "srv", source: "conf", holder: "srv"))
        #expect(policy.keepLast == 3 && policy.keepDaily == 5)
    }
}

extension PurgePlannerTests {
    @Test func onceReplicatedEachNodesPolicyMayDropItUnlessARepairIsOwed() throws {
        var site = try Self.site("[retention]\nkeep_last = 1")
        site.nodes["v2"]!.holderRetention = .init(keepLast: 3)
        // v1 kept 1 and dropped the older ones; v2 keeps 3 and holds them alone now.
        var history = [
            artifact(0, hoursAgo: 2), artifact(1, hoursAgo: 26, on: ["v2"]), artifact(2, hoursAgo: 50, on: ["v2"]),
            artifact(3, hoursAgo: 74, on: ["v2"]),
        ]
        // Never recorded as replicated: held (nothing may go before it had its copies).
        #expect(plan(site, "v2", history).deletions.isEmpty)
        // Recorded as replicated when v1 still held them: v2's own policy drops the oldest.
        for i in 1...3 { history[i].replicatedAt = now.addingTimeInterval(-40 * 3600) }
        #expect(deleted(plan(site, "v2", history), history) == [3])
        // A copy owed a repair on a paired backup node holds it again.
        history[3].copies.append(
            CopyInfo(
                node: "v1", path: history[3].copies[0].path, size: 10, state: .missing, seenAt: now, verifiedAt: nil,
                problem: nil))
        #expect(plan(site, "v2", history).deletions.isEmpty)
        // What is found replicated now is recorded.
        let fresh = [artifact(7, hoursAgo: 2), artifact(8, hoursAgo: 26, on: ["srv", "v1"])]
        let facts = PurgePlanner.Facts(node: "srv", artifacts: fresh, now: now)
        #expect(PurgePlanner.newlyReplicated(facts, site: site) == [7])
    }
}

extension PurgePlannerTests {
    @Test func ordersStayWithinTheSignedEnvelopesSize() throws {
        let paths = (0..<1000).map { "srv1/folder/conf/2027/01/15/\(String(format: "%06d", $0))/conf-\($0).tar.gz" }
        let orders = PurgeStage.orders(paths)
        #expect(orders.flatMap { $0 } == paths)
        #expect(orders.allSatisfy { $0.count <= PurgeStage.orderLimit })
        // A real order of the largest chunk, signed, opens within SignedEnvelope's 64 KiB.
        let key = Curve25519.Signing.PrivateKey()
        let biggest = try #require(orders.max { $0.count < $1.count })
        let order = PurgeOrder(
            epoch: String(repeating: "a", count: 32), node: "srv1", taskId: 1, fencingToken: 1,
            expiresAt: Date().addingTimeInterval(60),
            copies: biggest.map { .init(path: $0, size: 1 << 40, sha256: String(repeating: "f", count: 64), md5: nil) })
        let envelope = try order.signed(with: key)
        #expect(envelope.utf8.count <= 64 << 10, "\(envelope.utf8.count) bytes")
        #expect(throws: Never.self) {
            _ = try PurgeOrder.verify(
                envelope, keys: SigningKeyring(key.publicKey), node: "srv1", taskId: 1, fencingToken: 1)
        }
        // Long paths make smaller orders.
        let long = (0..<300).map { "srv1/folder/\(String(repeating: "x", count: 150))/2027/01/15/\($0)/a.tar.gz" }
        #expect(PurgeStage.orders(long).count > 2)
    }
}

extension PurgePlannerTests {
    @Test func aRepairedMutantLeavesQuarantineAfterQuarantineDays() throws {
        let site = try Self.site("[retention]\nkeep_last = 5\nquarantine_days = 30")
        var repaired = artifact(0, hoursAgo: 24 * 40, verifiedAgo: 24 * 35)
        let q = { (days: Double, of: ArtifactInfo) in
            QuarantineEntry(
                path: ".quarantine/" + of.copies[0].path, artifactPath: of.copies[0].path, size: 10,
                quarantinedAt: self.now.addingTimeInterval(-days * 86_400))
        }
        /// The plan's one quarantine entry; its absence fails the test.
        func decide(_ a: ArtifactInfo, _ entry: QuarantineEntry) throws -> PurgePlan.Entry {
            let plan = PurgePlanner.plan(.init(node: "srv", artifacts: [a], quarantine: [entry], now: now), site: site)
            #expect(plan.quarantine?.count == 1)
            return try #require(plan.quarantine?.first)
        }
        // Set aside 36 days ago, verified intact 35 days ago: it goes.
        #expect(try decide(repaired, q(36, repaired)).delete == true)
        // Set aside 10 days ago, repaired since: kept for quarantine_days.
        repaired.copies[0].verifiedAt = now.addingTimeInterval(-86_400)
        let young = try decide(repaired, q(10, repaired))
        #expect(!young.delete && young.reasons[0].contains("quarantine_days (30)") == true)
        // Not verified since it was set aside (not repaired): kept, whatever its age.
        repaired.copies[0].verifiedAt = now.addingTimeInterval(-90 * 86_400)
        #expect(try decide(repaired, q(60, repaired)).reasons[0].contains("kept until it is repaired") == true)
        var mutant = repaired
        mutant.copies[0].state = .quarantined
        #expect(try !decide(mutant, q(60, mutant)).delete)
    }
}
