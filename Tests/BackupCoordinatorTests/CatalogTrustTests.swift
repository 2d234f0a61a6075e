import BackupCore
import BackupHTTP
import BackupProtocol
import BackupTesting
import Crypto
import Foundation
import Logging
import Testing

@testable import BackupCoordinator

/// The catalog believes a report only as far as the task the coordinator leased vouches for
/// it: reference digests come from the origin's own backup result, unsolicited reports may
/// only say a copy got worse, verification times are the coordinator's, and repairs go only
/// where an artifact belongs.
@Suite(.timeLimit(.minutes(3)))
struct CatalogTrustTests {
    static let path = "srv1/svn/env/2026/12/01/020000/env-7.tar.gz"
    static let good = String(repeating: "a", count: 64)
    static let evil = String(repeating: "e", count: 64)

    static func copy(
        _ sha256: String, state: CopyState = .intact, path: String = path, verifiedAt: Date? = nil, size: Int64 = 100
    ) -> CopyReport {
        CopyReport(
            path: path, origin: "srv1", kind: "svn", source: "env", stamp: "2026/12/01/020000", size: size,
            sha256: sha256, md5: nil, revision: "7", created: Date(timeIntervalSince1970: 1_764_554_400),
            state: state, verifiedAt: verifiedAt)
    }

    static let site = SiteConfiguration(
        nodes: [
            .init(name: "srv1", roles: [.server]), .init(name: "srv2", roles: [.server]),
            .init(name: "vault", roles: [.backup]), .init(name: "stray", roles: [.backup]),
        ], pairings: [.init(server: "srv1", backup: "vault")])

    @Test func aDigestReportedBeforeTheOriginsBackupNeverBecomesTheReference() async throws {
        try await withTemporaryDirectory("trust-prereport") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            // A backup node names the future artifact with a wrong digest, in an inventory.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.evil, state: .unverified)]), node: "vault",
                authority: .inventory, now: now)
            var artifact = try #require(try await catalog.artifacts().first)
            #expect(artifact.confirmed == false)
            #expect(artifact.sha256 == nil)
            // Another server's backup result cannot speak for srv1's source either.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.evil)]), node: "srv2",
                authority: .originBackup(sources: ["env"]), now: now)
            #expect(try await catalog.artifacts().first?.confirmed == false)
            // The origin's own result sets the reference; the early claim becomes a mismatch.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            artifact = try #require(try await catalog.artifacts().first)
            #expect(artifact.confirmed == true)
            #expect(artifact.sha256 == Self.good)
            let states = Dictionary(uniqueKeysWithValues: artifact.copies.map { ($0.node, $0.state) })
            #expect(states == ["srv1": .intact, "vault": .mismatch])
        }
    }

    @Test func aListingThatWouldEraseManyCopiesIsHeldUntilAnAdminAcceptsIt() async throws {
        try await withTemporaryDirectory("trust-hold") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            try await catalog.register(
                name: "srv1", role: .agent,
                RegisterRequest(
                    version: "test", storePath: "/srv/store", diskTotal: 1, diskFree: 1, kinds: [], agentClock: nil,
                    dataPort: nil), now: now)
            let copies = (0..<10).map { i in
                Self.copy(Self.good, path: "srv1/svn/env/2026/12/01/02000\(i)/env-7.tar.gz")
            }.map { c in
                var c = c
                c.stamp = String(c.path.split(separator: "/")[3...6].joined(separator: "/"))
                return c
            }
            try await catalog.record(
                ArtifactReport(complete: false, copies: copies), node: "srv1",
                authority: .originBackup(sources: ["env"]),
                now: now)
            func held() async throws -> String? {
                try await catalog.nodes(now: now, onlineWithin: 60).first { $0.name == "srv1" }?.hold
            }
            func count() async throws -> Int { try await catalog.artifacts(node: "srv1").count }
            // An empty disk lists nothing: held, nothing erased.
            try await catalog.record(
                ArtifactReport(complete: true, copies: []), node: "srv1", authority: .inventory, now: now)
            #expect(try await count() == 10)
            let reason = try #require(try await held())
            #expect(reason.contains("would mark 10 of its 10 copies missing") && reason.contains("accept-missing"))
            // Two of ten (20 %) are believed, and the hold lifts.
            try await catalog.record(
                ArtifactReport(complete: true, copies: Array(copies.dropFirst(2))), node: "srv1", authority: .inventory,
                now: now)
            #expect(try await count() == 8)
            #expect(try await held() == nil)
            // Held again, then accepted by an admin: the next listing applies.
            try await catalog.record(
                ArtifactReport(complete: true, copies: Array(copies.suffix(1))), node: "srv1", authority: .verify,
                now: now)
            let stillHeld = try await held()
            #expect(try await count() == 8)
            #expect(stillHeld != nil)
            #expect(try await catalog.acceptMissing(node: "srv1"))
            #expect(try await catalog.acceptMissing(node: "vault") == false)
            try await catalog.record(
                ArtifactReport(complete: true, copies: Array(copies.suffix(1))), node: "srv1", authority: .inventory,
                now: now)
            #expect(try await count() == 1)
            #expect(try await held() == nil)
        }
    }

    @Test func anUnsolicitedReportOnlyLowersAndNeverSetsItsOwnVerificationTime() async throws {
        try await withTemporaryDirectory("trust-unsolicited") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date(timeIntervalSince1970: 1_764_600_000)
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            // Claims of copies the node does not hold, or that they are intact, change nothing.
            let future = now.addingTimeInterval(86400 * 365)
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good, verifiedAt: future)]), node: "vault",
                authority: .unsolicited, now: now)
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good, state: .quarantined)]), node: "stray",
                authority: .unsolicited, now: now)
            #expect(try await catalog.artifacts().first?.copies.map(\.node) == ["srv1"])
            // A receipt for a path no transfer is bringing is ignored; one that is, counts, at the
            // coordinator's time.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good, verifiedAt: future)]), node: "vault",
                authority: .receipt(paths: ["srv1/other"]), now: now)
            #expect(try await catalog.artifacts().first?.copies.count == 1)
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good, verifiedAt: future)]), node: "vault",
                authority: .receipt(paths: [Self.path]), now: now)
            var vault = try #require(try await catalog.artifacts().first?.copies.first { $0.node == "vault" })
            #expect(vault.state == .intact)
            #expect(vault.verifiedAt == now)
            // Bad news is heard from anyone holding the copy; good news only from a task.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good, state: .missing)]), node: "vault",
                authority: .unsolicited, now: now)
            vault = try #require(try await catalog.artifacts().first?.copies.first { $0.node == "vault" })
            #expect(vault.state == .missing)
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "vault", authority: .unsolicited,
                now: now)
            #expect(try await catalog.artifacts().first?.copies.first { $0.node == "vault" }?.state == .missing)
            // A purge removes only what its order named.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [], deleted: [Self.path]), node: "vault",
                authority: .purge(paths: []), now: now)
            #expect(try await catalog.artifacts().first?.copies.count == 2)
            // Control characters in what an agent says are escaped before they are stored.
            var hostile = Self.copy(Self.good, state: .quarantined)
            hostile.problem = "flipped\u{1b}[2J\ninjected"
            try await catalog.record(
                ArtifactReport(complete: false, copies: [hostile]), node: "vault", authority: .verify, now: now)
            let problem = try #require(
                try await catalog.artifacts().first?.copies.first { $0.node == "vault" }?.problem)
            #expect(!problem.contains("\u{1b}") && !problem.contains("\n") && problem.contains("\\u{1b}"))
        }
    }

    @Test func aRepairGoesOnlyToANodeTheArtifactBelongsTo() async throws {
        try await withTemporaryDirectory("trust-repair") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            let desk = TransferDesk(
                sites: SiteSource(Self.site), catalog: catalog, signals: TaskSignals(), ticketKey: .init(),
                purgeKey: nil, receiptKeys: SigningKeyring(),
                signedLifetime: 120,
                logger: Logger(label: "test"))
            // An unpaired node that says it quarantined a copy gets no repair.
            let quarantined = ArtifactReport(complete: false, copies: [Self.copy(Self.good, state: .quarantined)])
            try await catalog.record(quarantined, node: "stray", authority: .verify, now: now)
            #expect(try await desk.scheduleRepairs(quarantined, node: "stray", now: now).isEmpty)
            // The paired backup node does, from the origin.
            try await catalog.record(quarantined, node: "vault", authority: .verify, now: now)
            let repairs = try await desk.scheduleRepairs(quarantined, node: "vault", now: now)
            #expect(repairs.map { $0.transfer?.sender } == ["srv1"])
            #expect(repairs.map { $0.transfer?.receiver } == ["vault"])
            // That repair fails for good: the next verified copy (the stray backup node's, which it
            // received under a ticket) is tried, and when none is left, nothing is queued.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "stray",
                authority: .receipt(paths: [Self.path]), now: now.addingTimeInterval(-60))
            let failed = try #require(repairs.first?.transfer)
            let next = try await desk.repairAgain(failed, now: now)
            #expect(next?.transfer?.sender == "stray" && next?.transfer?.triedSenders == ["srv1"])
            let none = try await desk.repairAgain(try #require(next?.transfer), now: now)
            #expect(none == nil)
            // An operator's transfer along no pairing is refused.
            // (The desk is domain: it throws the registered code, the controller answers it.)
            let refused = await #expect(throws: BackupError.self) {
                _ = try await desk.plan(TransferRequest(from: "srv1", to: "stray"), operatorName: "root", now: now)
            }
            #expect(refused?.code == .notPaired)
        }
    }

    @Test func aRepairWithNoSourceLeftIsQueuedWhenAVerifiedCopyAppears() async throws {
        try await withTemporaryDirectory("trust-waiting") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            let desk = TransferDesk(
                sites: SiteSource(Self.site), catalog: catalog, signals: TaskSignals(), ticketKey: .init(),
                purgeKey: nil, receiptKeys: SigningKeyring(),
                signedLifetime: 120, logger: Logger(label: "test"))
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            // The vault holds a copy it listed but never verified: no source for a repair yet.
            try await catalog.record(
                ArtifactReport(complete: false, copies: [Self.copy(Self.good)]), node: "vault",
                authority: .inventory, now: now)
            // The origin's only verified copy is quarantined: nothing can repair it now.
            let quarantined = ArtifactReport(complete: false, copies: [Self.copy(Self.good, state: .quarantined)])
            try await catalog.record(quarantined, node: "srv1", authority: .verify, now: now)
            #expect(try await desk.scheduleRepairs(quarantined, node: "srv1", now: now).isEmpty)
            #expect(try await catalog.artifactsAwaitingRepair().count == 1)
            // A report of copies that proves nothing (the vault's listing) queues nothing.
            let listed = ArtifactReport(complete: false, copies: [Self.copy(Self.good, state: .unverified)])
            #expect(try await desk.repairWaiting(listed, node: "vault", now: now).isEmpty)
            // The vault's copy is verified intact: the waiting repair goes, from the vault.
            let verified = ArtifactReport(complete: false, copies: [Self.copy(Self.good)])
            try await catalog.record(verified, node: "vault", authority: .verify, now: now.addingTimeInterval(10))
            let repairs = try await desk.repairWaiting(verified, node: "vault", now: now.addingTimeInterval(10))
            #expect(repairs.map { $0.transfer?.sender } == ["vault"])
            #expect(repairs.map { $0.transfer?.receiver } == ["srv1"])
            #expect(repairs.map { $0.transfer?.purpose } == [.repair])
            // While that repair is queued, another proof does not queue a second one.
            #expect(try await desk.repairWaiting(verified, node: "vault", now: now.addingTimeInterval(20)).isEmpty)
        }
    }

    @Test func aTransferIsNotQueuedToANodeWithoutTheSpaceForIt() async throws {
        try await withTemporaryDirectory("trust-space") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            // Two artifacts of 40 MiB on srv1; vault reports 100 MiB free (the margin is 64 MiB).
            let big = (0..<2).map { i in
                var c = Self.copy(Self.good, path: "srv1/svn/env/2026/12/01/02000\(i)/env-7.tar.gz", size: 40 << 20)
                c.stamp = "2026/12/01/02000\(i)"
                return c
            }
            try await catalog.record(
                ArtifactReport(complete: false, copies: big), node: "srv1", authority: .originBackup(sources: ["env"]),
                now: now)
            try await catalog.register(
                name: "vault", role: .agent,
                RegisterRequest(
                    version: "test", storePath: "/srv/store", diskTotal: 1 << 30, diskFree: 100 << 20, kinds: [],
                    agentClock: nil, dataPort: nil), now: now)
            let desk = TransferDesk(
                sites: SiteSource(Self.site), catalog: catalog, signals: TaskSignals(), ticketKey: .init(),
                purgeKey: nil, receiptKeys: SigningKeyring(),
                signedLifetime: 120, logger: Logger(label: "test"))
            let plan = try await desk.plan(TransferRequest(from: "srv1", to: "vault"), operatorName: "root", now: now)
            #expect(plan.queued.isEmpty)
            #expect(plan.noSpace?.count == 2)
            #expect(plan.noSpaceReason?.contains("'vault' reported 104857600 bytes free") == true, "\(plan)")
            #expect(plan.noSpaceReason?.contains("trash") == false)
            // Purged copies waiting in its trash take that space: the refusal says how to free it.
            _ = try await catalog.heartbeat(name: "vault", diskFree: 100 << 20, trashBytes: 30 << 20, now: now)
            let trashed = try await desk.plan(
                TransferRequest(from: "srv1", to: "vault"), operatorName: "root", now: now)
            #expect(
                trashed.noSpaceReason?.contains(
                    "its trash holds 31457280 bytes of purged copies: 'scm-backup trash --node vault --empty' frees them"
                )
                    == true, "\(trashed)")
            // With 110 MiB free the first fits (40 + 64 margin); then 70 MiB are left, too few for the second.
            try await catalog.register(
                name: "vault", role: .agent,
                RegisterRequest(
                    version: "test", storePath: "/srv/store", diskTotal: 1 << 30, diskFree: 110 << 20, kinds: [],
                    agentClock: nil, dataPort: nil), now: now)
            let some = try await desk.plan(TransferRequest(from: "srv1", to: "vault"), operatorName: "root", now: now)
            #expect(some.queued.count == 1 && some.noSpace?.count == 1, "\(some)")
        }
    }

    /// A rebuild takes a reference only from a receipt a trusted key signed for that very path,
    /// or from the origin's own listing; a copy whose bytes differ from its receipt is a mismatch.
    @Test func aRebuildBelievesOnlyTrustedReceiptsAndTheOriginsOwnListing() async throws {
        try await withTemporaryDirectory("trust-rebuild") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let hub = Curve25519.Signing.PrivateKey()
            let keys = SigningKeyring(hub.publicKey)
            let now = Date()
            func receipt(_ path: String, sha256: String, key: Curve25519.Signing.PrivateKey = hub) throws -> String {
                try ArtifactReceipt(
                    epoch: "lost", path: path, size: 100, sha256: sha256, md5: nil,
                    facts: .init(origin: "srv1", kind: "svn", source: "env", revision: "7", created: nil), signedAt: now
                ).signed(with: key)
            }
            let paths = (1...5).map { "srv1/svn/env/2026/12/0\($0)/020000/env-7.tar.gz" }
            func copy(_ i: Int, _ sha256: String, receipt: String?) -> CopyReport {
                var c = Self.copy(sha256, state: .unverified, path: paths[i])
                c.stamp = "2026/12/0\(i + 1)/020000"
                c.receipt = receipt
                return c
            }
            let vault = [
                copy(0, Self.good, receipt: try receipt(paths[0], sha256: Self.good)),  // vouched by a receipt
                copy(1, Self.evil, receipt: try receipt(paths[1], sha256: Self.good)),  // bytes not the receipt's
                // A stranger's key:
                copy(2, Self.good, receipt: try receipt(paths[2], sha256: Self.good, key: .init())),
                copy(3, Self.good, receipt: try receipt(paths[0], sha256: Self.good)),  // another artifact's receipt
                copy(4, Self.good, receipt: nil),  // nothing vouches for it but srv1 below
            ]
            try await catalog.record(
                ArtifactReport(complete: true, copies: vault), node: "vault", authority: .rebuild(keys: keys), now: now)
            try await catalog.record(
                ArtifactReport(complete: true, copies: [copy(4, Self.good, receipt: nil)]), node: "srv1",
                authority: .rebuild(keys: keys), now: now)
            let artifacts = try await catalog.artifacts()
            func artifact(_ i: Int) -> ArtifactInfo? { artifacts.first { $0.stamp == "2026/12/0\(i + 1)/020000" } }
            #expect(artifact(0)?.sha256 == Self.good)
            #expect(artifact(1)?.sha256 == Self.good)
            #expect(artifact(1)?.copies.first?.state == .mismatch, "its bytes are not its receipt's")
            #expect(artifact(2)?.sha256 == nil, "a key nobody trusts vouches for nothing")
            #expect(artifact(3)?.sha256 == nil, "a receipt of another path vouches for nothing")
            #expect(artifact(4)?.sha256 == Self.good, "the origin's own listing")
            let counts = try await catalog.copyCounts()
            #expect(counts.first { $0.node == "vault" }?.unconfirmed == 2)
        }
    }
}
