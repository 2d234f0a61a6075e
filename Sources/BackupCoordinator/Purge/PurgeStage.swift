import BackupCore
import BackupProtocol
import Foundation
import Logging

/// The purge stage: for one node, the plan (``PurgePlanner``) from the catalog as it is now,
/// and one purge task naming exactly the copies it deletes (signed as an order when an agent
/// leases it; the agent's floors still apply). Each run ends with it on every node holding
/// copies of the run's sources, whether or not its transfers succeeded; admins run it by hand
/// (`scm-backup purge --node NAME --apply`) and read it (`--node NAME`, a dry run).
public struct PurgeStage: Sendable {
    let sites: SiteSource
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let queue: TaskQueue
    let hasPurgeKey: Bool
    let wallClock: any WallClock
    let logger: Logger

    /// The most copies one order names. A signed envelope is at most 64 KiB (``SignedEnvelope``),
    /// and each copy takes its path and about 110 bytes more in it, base64 adding a third: one
    /// order also stays under ``orderBytes`` of copies.
    public static let orderLimit = 250
    static let orderBytes = 40_000
    /// The most orders one stage queues (one purge task each, run one after the other): a
    /// backlog beyond is left to the next stage.
    public static let ordersPerStage = 40

    /// `paths` cut into orders within ``orderLimit`` and ``orderBytes``.
    static func orders(_ paths: [String]) -> [[String]] {
        var orders: [[String]] = []
        var current: [String] = []
        var bytes = 0
        for path in paths {
            let size = path.utf8.count + 110
            if !current.isEmpty, current.count == orderLimit || bytes + size > orderBytes {
                orders.append(current)
                current = []
                bytes = 0
            }
            current.append(path)
            bytes += size
        }
        if !current.isEmpty { orders.append(current) }
        return orders
    }

    /// What the stage would order on `node` now.
    public func plan(node: String) async throws -> PurgePlan {
        try await plan(node: node, record: false)
    }

    /// The plan; with `record`, the artifacts it found replicated for the first time are
    /// recorded so (``ArtifactInfo/replicatedAt``) before it is used.
    func plan(node: String, record: Bool) async throws -> PurgePlan {
        guard site.node(node) != nil else {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        let facts = PurgePlanner.Facts(
            node: node, artifacts: try await catalog.purgeArtifacts(node: node),
            reads: try await catalog.activeReads(node: node), released: try await catalog.purgeReleases(),
            pauses: try await catalog.purgePauses(), quarantine: try await catalog.quarantine(node: node),
            now: wallClock.currentDate)
        var plan = PurgePlanner.plan(facts, site: site)
        if record { try await catalog.markReplicated(PurgePlanner.newlyReplicated(facts, site: site), now: facts.now) }
        if plan.paused == nil, let pending = try await catalog.purgePending(node: node) {
            plan.paused = "purge task \(pending) of \(node) is queued or running; the next stage waits for it"
        }
        return plan
    }

    /// Plans `node` and queues purge tasks of its deletions (``orders(_:)``, at most
    /// ``ordersPerStage``), unless purging is paused, one is pending, there is nothing to delete
    /// or no purge key; the plan answers with the tasks.
    public func apply(node: String, by operatorName: String, run: Int64? = nil) async throws -> PurgePlan {
        let started = ContinuousClock.now
        var plan = try await self.plan(node: node, record: true)
        let took = ContinuousClock.now - started
        logger.info(
            "purge stage planned",
            metadata: [
                "scm.node": "\(node)", "scm.copies": "\(plan.copies.count)", "scm.deletions": "\(plan.deletions.count)",
                "scm.ms": "\(String(format: "%.1f", took.inSeconds * 1000))",
            ])
        let orders = Self.orders(plan.deletions.map(\.path)).prefix(Self.ordersPerStage)
        let deletions = orders.flatMap { $0 }
        let mutants = Array((plan.quarantine ?? []).filter(\.delete).map(\.path).prefix(Self.orderLimit))
        var stage = PurgeStanding.Stage(
            node: node, at: plan.at, ordered: 0, kept: plan.copies.count - plan.deletions.count, task: nil,
            paused: plan.paused, holds: plan.holds, heldBackBy: plan.heldBackBy)
        guard plan.paused == nil, !deletions.isEmpty || !mutants.isEmpty else {
            try await catalog.saveStage(stage)
            return plan
        }
        guard hasPurgeKey else {
            throw BackupError(
                .noPurgeKey,
                "The coordinator has no purge_key configured, so it cannot sign purge orders; add purge_key to [coordinator]."
            )
        }
        var tasks: [Int64] = []
        if !mutants.isEmpty {
            let task = try await catalog.submitTrash(
                node: node, order: TrashOrder(removeQuarantined: mutants), now: wallClock.currentDate, run: run)
            tasks.append(task.id)
        }
        for order in orders {
            let task = try await catalog.submit(
                SubmitTaskRequest(kind: .purge, node: node, artifacts: order), now: wallClock.currentDate,
                maxAttempts: 3, run: run)
            tasks.append(task.id)
        }
        await queue.signals.signal(node)
        plan.task = tasks.first
        plan.tasks = tasks.count > 1 ? tasks : nil
        stage.ordered = deletions.count
        stage.task = tasks.first
        try await catalog.saveStage(stage)
        logger.notice(
            "purge queued",
            metadata: [
                "scm.node": "\(node)", "scm.tasks": "\(tasks.map(String.init).joined(separator: ","))",
                "scm.copies": "\(deletions.count)",
                "scm.operator": "\(operatorName)", "scm.run": "\(run.map(String.init) ?? "-")",
            ])
        return plan
    }

    /// Queues `order` for `node`'s trash (a purge task naming no copy; signed when leased).
    public func trash(node: String, order: TrashOrder, by operatorName: String) async throws -> TaskInfo {
        guard site.node(node) != nil else {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        guard hasPurgeKey else {
            throw BackupError(
                .noPurgeKey,
                "The coordinator has no purge_key configured, so it cannot sign trash orders; add purge_key to [coordinator]."
            )
        }
        for path in order.restore ?? [] {
            do { _ = try Store.location(ofRelative: path) } catch let error as BackupError {
                throw BackupError(.invalidArgument, error.message)
            }
        }
        let task = try await catalog.submitTrash(node: node, order: order, now: wallClock.currentDate)
        await queue.signals.signal(node)
        logger.notice(
            "trash order queued",
            metadata: ["scm.node": "\(node)", "scm.task": "\(task.id)", "scm.operator": "\(operatorName)"])
        return task
    }

    /// Accepts the flagged newest backup of `origin`'s `source` as its baseline.
    public func release(origin: String, source: String, by: String) async throws -> PurgeReleaseResponse {
        guard let node = site.node(origin) else {
            throw BackupError(.unknownNode, "Node '\(origin)' is not in the site configuration.")
        }
        guard node.sources[source] != nil else {
            throw BackupError(.unknownSource, "Node '\(origin)' has no source '\(source)' in the site configuration.")
        }
        let all = try await catalog.artifacts(origin: origin, source: source)
        let released = try await catalog.purgeReleases()["\(origin)/\(source)"]
        let newest = PurgePlanner.latest(all)
        guard let newest, let id = newest.id, let flags = newest.regressions, !flags.isEmpty,
            released.map({ id > $0 }) ?? true
        else {
            throw BackupError(
                .notFlagged,
                "The newest backup of \(origin)/\(source)\(newest.map { " (\($0.stamp))" } ?? "") is not flagged as a regression (or was accepted already): there is nothing to release."
            )
        }
        try await catalog.releasePurge(
            origin: origin, source: source, artifact: id, by: by, now: wallClock.currentDate)
        let path = newest.copies.first { $0.node == origin }?.path ?? newest.copies.first?.path ?? newest.stamp
        return PurgeReleaseResponse(origin: origin, source: source, path: path, regressions: flags)
    }

    /// Turns a pause switch on or off (`node` nil: the whole site).
    public func pause(node: String?, on: Bool, by: String, reason: String?) async throws -> Bool {
        if let node, site.node(node) == nil {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        return try await catalog.setPurgePause(
            node: node, on: on, by: by, reason: reason, now: wallClock.currentDate)
    }

    /// The nodes holding copies of `sources` (`origin/source`): where a run's stage goes.
    func holders(of sources: [(origin: String, source: String)]) async throws -> [String] {
        var nodes: Set<String> = []
        for s in sources { nodes.formUnion(try await catalog.holders(origin: s.origin, source: s.source)) }
        return nodes.sorted()
    }
}
