import BackupCore
import BackupProtocol
import Foundation

/// The site's status as `GET /v1/status` and `scm-backup status` show it, and the `check`
/// report, built from the catalog with the definitions of ``Standing``. A bounded number of
/// indexed lookups: one per source and one per pairing, however long the history.
public struct StatusBoard: Sendable {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let wallClock: any WallClock
    /// A node silent for three heartbeats is offline.
    let heartbeatSeconds: Int

    public func status() async throws -> SiteStatus {
        let now = wallClock.currentDate
        let states = try await catalog.scheduleStates()
        let schedules = Dictionary(
            Scheduler.list(site, states: states, now: now).map { ($0.node + "/" + $0.source, $0) },
            uniquingKeysWith: { a, _ in a })
        let keys = site.nodes.values.sorted { $0.name < $1.name }.flatMap { node in
            node.sources.keys.sorted().map { (origin: node.name, source: $0) }
        }
        let newest = try await catalog.newestArtifacts(keys)
        let refusals = try await catalog.sourceRefusals(site)
        let released = try await catalog.purgeReleases()
        var sources: [SourceStatus] = []
        for key in keys {
            let name = key.origin + "/" + key.source
            guard let definition = site.node(key.origin)?.sources[key.source] else { continue }
            let artifact = newest[name]
            let made = artifact.flatMap { $0.created ?? ArtifactLocation.date(fromStamp: $0.stamp) }
            let schedule = schedules[name]
            // A Trac environment's svn source fires with it: its slot is the environment's.
            let slotKey = schedule?.backedUpWith.map { key.origin + "/" + $0 } ?? name
            let state = states[slotKey]
            let lastFire = state.flatMap { $0.outcome == "first seen" ? nil : $0.lastSlot }
            let copies = site.receivers(of: key.origin).map { receiver -> CopyStatus in
                let copy = artifact?.copies.first { $0.node == receiver }
                return CopyStatus(
                    node: receiver, state: copy?.state, verifiedAt: copy?.verifiedAt,
                    verified: copy.map { Standing.isVerified($0, now: now, maxAge: site.verify.maxAge) } ?? false,
                    verifyOverdue: copy.map { Standing.isVerifyOverdue($0, now: now, maxAge: site.verify.maxAge) }
                        ?? false)
            }
            let nextRun =
                schedule?.nextFire ?? schedule?.backedUpWith.flatMap { schedules[key.origin + "/" + $0]?.nextFire }
            sources.append(
                SourceStatus(
                    node: key.origin, source: key.source, kind: definition.kind.rawValue,
                    newest: artifact.map { a in
                        NewestArtifact(
                            path: a.copies.first { $0.node == key.origin }?.path ?? a.copies.first?.path ?? a.fileName,
                            stamp: a.stamp, created: made, size: a.size, revision: a.revision,
                            ageSeconds: made.map { Int(now.timeIntervalSince($0)) })
                    },
                    late: Standing.isLate(
                        newestMadeAt: made, lastFire: lastFire, now: now, grace: site.schedule.backupGrace),
                    lastSlot: lastFire, nextRun: nextRun, copies: copies, refusal: refusals[name],
                    purgeHold: artifact.flatMap { a in
                        guard let flags = a.regressions, !flags.isEmpty,
                            released[name].map({ (a.id ?? 0) > $0 }) ?? true
                        else { return nil }
                        return
                            "its newest backup \(a.stamp) is flagged (\(flags.joined(separator: "; "))): all purging of it holds until 'scm-backup purge release --source \(key.source) --origin \(key.origin)'"
                    }))
        }
        let registered = Dictionary(
            try await catalog.nodes(now: now, onlineWithin: Double(3 * heartbeatSeconds)).map { ($0.name, $0) },
            uniquingKeysWith: { a, _ in a })
        let counts = try await catalog.activeTaskCounts()
        let nodes = site.nodes.values.sorted { $0.name < $1.name }.map { node in
            let known = registered[node.name]
            return NodeSummary(
                name: node.name, roles: node.roles.map(\.rawValue).sorted(), online: known?.online ?? false,
                diskFree: known?.diskFree, diskTotal: known?.diskTotal, tasksQueued: counts[node.name]?.queued ?? 0,
                tasksRunning: counts[node.name]?.leased ?? 0)
        }
        let purge = PurgeStanding(pauses: try await catalog.purgePauses(), stages: try await catalog.stages())
        return SiteStatus(generatedAt: now, sources: sources, nodes: nodes, purge: purge)
    }

    /// For every pairing and source: what the backup node lacks of the server's artifacts.
    public func check() async throws -> [CheckEntry] {
        var entries: [CheckEntry] = []
        for pairing in site.pairings.sorted(by: { ($0.server, $0.backup) < ($1.server, $1.backup) }) {
            entries += try await catalog.holdings(server: pairing.server, backup: pairing.backup)
        }
        return entries
    }
}
