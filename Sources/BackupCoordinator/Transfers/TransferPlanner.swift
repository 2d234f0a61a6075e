import BackupCore
import BackupProtocol
import Foundation

/// The transfer desk's decisions as pure functions over a snapshot of the catalog (artifacts
/// with their copies, the transfers on their way) and the site: which artifacts a transfer
/// moves, and where a repair takes its bytes from. No I/O, so they are tested without SQLite.
enum TransferPlanner {
    /// Whether `node` may be sent `artifact`: its origin, or a backup node paired with it.
    static func mayReceive(_ node: String, _ artifact: ArtifactInfo, site: SiteConfiguration) -> Bool {
        node == artifact.origin || site.pairings.contains { $0.server == artifact.origin && $0.backup == node }
    }

    /// What a transfer from `from` to `to` does with each artifact: moves the copy `from`
    /// holds in good state when `to` lacks it intact and none is on its way; skips what `to`
    /// holds intact. Unconfirmed artifacts and those `to` may not hold are left alone.
    static func plan(
        _ artifacts: [ArtifactInfo], from: String, to: String, active: Set<String>, site: SiteConfiguration
    ) -> (move: [(artifact: ArtifactInfo, copy: CopyInfo)], skipped: [String]) {
        var move: [(ArtifactInfo, CopyInfo)] = []
        var skipped: [String] = []
        for artifact in artifacts where artifact.confirmed == true && mayReceive(to, artifact, site: site) {
            guard let held = artifact.copies.first(where: { $0.node == from }), !held.state.isUnfitToSend else {
                continue
            }
            if artifact.copies.contains(where: { $0.node == to && $0.state == .intact }) {
                skipped.append(held.path)
                continue
            }
            if active.contains(to + "|" + held.path) { continue }  // Already on its way.
            move.append((artifact, held))
        }
        return (move, skipped)
    }

    /// Where a repair of `artifact` on `node` comes from.
    enum RepairSource: Equatable {
        /// A verified intact copy on a node of the site: the one along a pairing with `node`
        /// (the origin, for a backup node) when there is one, since only paired nodes are known
        /// to reach each other through the firewall; else the one verified most recently.
        case copy(CopyInfo)
        /// The node may not hold the artifact, or its reference is not its origin's.
        case refused
        /// No other node holds a verified intact copy (outside `excluding`).
        case none
    }

    static func repairSource(
        for artifact: ArtifactInfo, on node: String, excluding: [String], site: SiteConfiguration
    ) -> RepairSource {
        // A repair goes only where the artifact belongs, from a copy verified against a
        // reference its origin gave.
        guard artifact.confirmed == true, mayReceive(node, artifact, site: site) else { return .refused }
        let good = artifact.copies.filter {
            // Any node of the site holding a verified intact copy may send it.
            $0.node != node && !excluding.contains($0.node) && $0.state == .intact && $0.verifiedAt != nil
                && site.node($0.node) != nil
        }
        let paired = good.filter { site.pairing($0.node, node) != nil }
        let candidates = paired.isEmpty ? good : paired
        guard
            let best = candidates.max(by: { ($0.verifiedAt ?? .distantPast) < ($1.verifiedAt ?? .distantPast) })
        else {
            return .none
        }
        return .copy(best)
    }
}
