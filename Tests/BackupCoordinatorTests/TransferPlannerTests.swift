import BackupCore
import BackupProtocol
import Foundation
import Testing

@testable import BackupCoordinator

/// The transfer desk's decisions on a snapshot, without SQLite or sockets: what a transfer
/// moves and skips, and where a repair takes its bytes from.
struct TransferPlannerTests {
    let site = CoordinatorHarness.site
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func artifact(
        _ stamp: String, confirmed: Bool = true, origin: String = "srv1", _ copies: [(String, CopyState, Double?)]
    ) -> ArtifactInfo {
        let path = "\(origin)/svn/env/\(stamp)/env-7.tar.gz"
        return ArtifactInfo(
            origin: origin, kind: "svn", source: "env", stamp: stamp, fileName: "env-7.tar.gz", size: 100,
            sha256: "ab", md5: nil, revision: "7", created: nil,
            copies: copies.map { node, state, verified in
                CopyInfo(
                    node: node, path: path, size: 100, state: state, seenAt: t0,
                    verifiedAt: verified.map { t0.addingTimeInterval($0) }, problem: nil)
            }, confirmed: confirmed)
    }

    @Test func aTransferMovesGoodCopiesSkipsWhatIsThereAndLeavesTheRestAlone() {
        let artifacts = [
            artifact("2026/12/01/010000", [("srv1", .intact, 0)]),  // moved
            artifact("2026/12/01/020000", [("srv1", .intact, 0), ("vault", .intact, 0)]),  // skipped
            artifact("2026/12/01/030000", [("srv1", .mutant, 0)]),  // unfit: never sent
            artifact("2026/12/01/040000", confirmed: false, [("srv1", .intact, 0)]),  // no reference yet
            artifact("2026/12/01/050000", [("srv1", .unverified, nil)]),  // on its way already
            artifact("2026/12/01/060000", origin: "srv2", [("srv1", .intact, 0)]),  // vault is not srv2's
        ]
        let onItsWay: Set<String> = ["vault|srv1/svn/env/2026/12/01/050000/env-7.tar.gz"]
        let (move, skipped) = TransferPlanner.plan(artifacts, from: "srv1", to: "vault", active: onItsWay, site: site)
        #expect(move.map(\.artifact.stamp) == ["2026/12/01/010000"])
        #expect(skipped == ["srv1/svn/env/2026/12/01/020000/env-7.tar.gz"])
    }

    @Test func aRepairComesAlongThePairingThenFromTheLatestVerifiedCopyNeverFromOneTried() {
        let both = artifact(
            "2026/12/01/010000",
            [("srv1", .intact, 100), ("vault", .quarantined, 50), ("srv2", .intact, 200), ("ghost", .intact, 300)])
        // ghost is no node of the site; srv2 verified later than srv1, but srv1 is vault's pair
        // (the origin): a repair goes along the pairing, where the nodes are known to reach
        // each other, and from another node only when the pair has no good copy.
        func source(_ excluding: [String], on node: String = "vault") -> TransferPlanner.RepairSource {
            TransferPlanner.repairSource(for: both, on: node, excluding: excluding, site: site)
        }
        #expect(source([]) == .copy(both.copies[0]))
        #expect(source(["srv1"]) == .copy(both.copies[2]))
        #expect(source(["srv2", "srv1"]) == .none)
        // Never to a node the artifact does not belong to, nor from an unconfirmed reference.
        #expect(source([], on: "intruder") == .refused)
        let unconfirmed = artifact("2026/12/01/020000", confirmed: false, [("srv1", .intact, 100)])
        #expect(TransferPlanner.repairSource(for: unconfirmed, on: "vault", excluding: [], site: site) == .refused)
        // A copy never verified is no source.
        let listed = artifact("2026/12/01/030000", [("srv1", .intact, nil), ("vault", .quarantined, 10)])
        #expect(TransferPlanner.repairSource(for: listed, on: "vault", excluding: [], site: site) == .none)
    }
}
