import BackupCore
import BackupProtocol
import Foundation
import Logging

/// The hub's side of agents that back up on their own while it is away: the plan each agent
/// keeps (its node's scheduled sources, their schedules, the last slot handled), and the
/// artifacts they made, reported on the hub's return. Such an artifact is its origin's result
/// for its own source; its slot counts as handled, so the scheduler's catch-up skips it (and a
/// catch-up backup of it still queued is cancelled: nothing runs twice); its transfers to the
/// node's backup nodes are queued. See `Protocol/task-lifecycle.md`, "Without the hub".
struct Fallbacks: Sendable {
    let sites: SiteSource
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let desk: TransferDesk
    let logger: Logger

    /// `node`'s plan: each source the scheduler fires for it (an svn source a Trac environment
    /// pairs is backed up with it), with the last slot handled.
    func plan(for node: String) async throws -> FallbackPlan? {
        guard let configured = site.node(node) else { return nil }
        let states = try await catalog.scheduleStates()
        // Scheduler.entries gives only sources of the node's table that have a cron expression.
        let entries = Scheduler.entries(site).filter { $0.node == node }.compactMap { entry -> FallbackPlan.Entry? in
            guard let definition = configured.sources[entry.source], let cron = entry.schedule.expression else {
                return nil
            }
            return FallbackPlan.Entry(
                definition: definition, cron: cron.text, zone: entry.schedule.zoneName,
                jitterSeconds: entry.schedule.jitterSeconds, lastSlot: states[entry.key]?.lastSlot)
        }
        var verify: FallbackPlan.Verify?
        if !site.verify.off {
            verify = FallbackPlan.Verify(
                windowStart: site.verify.windowStart, zone: site.schedule.timeZone, budget: site.verify.budget,
                lastWindow: states[Scheduler.nightlyKey(node)]?.lastSlot)
        }
        return FallbackPlan(node: node, entries: entries, verify: verify)
    }

    /// Records the nightly verify `node` ran on its own: its findings as a verify task's (a
    /// copy it quarantined or found missing is repaired), the window as handled.
    private func acceptVerify(_ report: FallbackReport, from node: String, now: Date) async throws -> FallbackAnswer {
        try await catalog.record(report.artifacts, node: node, authority: .verify, now: now)
        let repairs = try await desk.scheduleRepairs(report.artifacts, node: node, now: now)
        let key = Scheduler.nightlyKey(node)
        if try await catalog.scheduleStates()[key].map({ $0.lastSlot < report.slot }) ?? true {
            try await catalog.recordSchedule(
                ScheduleState(
                    node: node, source: "(nightly)", lastSlot: report.slot, firedAt: report.madeAt,
                    outcome: "verified by the agent on its own while the hub was away: \(report.detail)"))
        }
        logger.notice(
            "an agent's own verify recorded",
            metadata: [
                "scm.node": "\(node)", "scm.slot": "\(report.slot)", "scm.copies": "\(report.artifacts.copies.count)",
                "scm.repairs": "\(repairs.count)",
            ])
        return FallbackAnswer(transfers: repairs.isEmpty ? nil : repairs.map(\.id))
    }

    /// Records what `node` made on its own for `report.slot` of its source.
    func accept(_ report: FallbackReport, from node: String, now: Date) async throws -> FallbackAnswer {
        if report.kind == .verify { return try await acceptVerify(report, from: node, now: now) }
        guard let configured = site.node(node), let definition = configured.sources[report.source] else {
            throw BackupError(
                .unknownSource,
                "Node '\(node)' has no source '\(AuditText.escape(report.source, limit: 100))' in the site configuration; its fallback backup is not recorded."
            )
        }
        let sources = Set([definition.name] + (definition.svnSource.map { [$0.name] } ?? []))
        // The origin's own result for its own sources, as a backup task's: every other copy is refused.
        try await catalog.record(report.artifacts, node: node, authority: .originBackup(sources: sources), now: now)
        let own = report.artifacts.copies.filter { $0.origin == node && sources.contains($0.source) }
        var receipts: [String] = []
        for copy in own {
            if let receipt = try await desk.receipt(ofPath: copy.path, now: now) { receipts.append(receipt) }
        }
        // The slot is handled: the scheduler's catch-up does not fire it, and one it queued is cancelled.
        let key = node + "/" + report.source
        let state = try await catalog.scheduleStates()[key]
        if state.map({ $0.lastSlot < report.slot }) ?? true {
            try await catalog.recordSchedule(
                ScheduleState(
                    node: node, source: report.source, lastSlot: report.slot, firedAt: report.madeAt, task: nil,
                    outcome: "made by the agent on its own while the hub was away"))
        }
        var cancelled: [Int64] = []
        for id in try await catalog.queuedScheduledBackups(node: node, source: report.source, upTo: report.slot) {
            let failure = TaskFailure(
                code: .cancelled,
                message:
                    "Task \(id) cancelled: node '\(node)' backed up '\(report.source)' on its own for the slot of \(report.slot) while the hub was away."
            )
            if try await catalog.cancelQueued(id, failure: failure) { cancelled.append(id) }
        }
        if !cancelled.isEmpty {
            try await catalog.recordSchedule(
                ScheduleState(
                    node: node, source: report.source, lastSlot: max(report.slot, state?.lastSlot ?? report.slot),
                    firedAt: report.madeAt, task: nil,
                    outcome:
                        "made by the agent on its own while the hub was away; the catch-up task \(cancelled.map(String.init).joined(separator: ", ")) cancelled"
                ))
        }
        // The node's backup nodes get the artifacts, as after a run.
        var transfers: [Int64] = []
        for pairing in site.pairings where pairing.server == node && desk.ticketKey != nil {
            for source in sources.sorted() {
                let plan = try await desk.plan(
                    TransferRequest(from: node, to: pairing.backup, source: source),
                    operatorName: "fallback of \(node)",
                    now: now)
                transfers += plan.queued.map(\.id)
            }
        }
        logger.notice(
            "an agent's own backup recorded",
            metadata: [
                "scm.node": "\(node)", "scm.source": "\(report.source)", "scm.slot": "\(report.slot)",
                "scm.artifacts": "\(own.map(\.path))", "scm.refused": "\(report.artifacts.copies.count - own.count)",
                "scm.cancelled": "\(cancelled)",
                "scm.transfers": "\(transfers.count)",
            ])
        return FallbackAnswer(
            receipts: receipts.isEmpty ? nil : receipts, cancelled: cancelled.isEmpty ? nil : cancelled,
            transfers: transfers.isEmpty ? nil : transfers)
    }
}
