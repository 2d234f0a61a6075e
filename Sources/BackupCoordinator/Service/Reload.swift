import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension Coordinator {
    /// What a reload did.
    public struct ReloadOutcome: Sendable, Equatable {
        /// Queued tasks cancelled `config-removed` (their source, node or pairing is gone).
        public var cancelled: [Int64]
    }

    /// The `[coordinator]` keys whose change only a restart can apply (listen address, store of
    /// the catalog, certificates and keys, lease timing): a reload that changes one is refused,
    /// naming them. The site tables (nodes, sources, pairings, schedules, runs, verify) reload.
    public static func restartKeys(_ old: CoordinatorConfiguration, _ new: CoordinatorConfiguration) -> [String] {
        var keys: [String] = []
        if old.host != new.host || old.port != new.port { keys.append("listen") }
        if old.certificate != new.certificate { keys.append("certificate") }
        if old.privateKey != new.privateKey { keys.append("key") }
        if old.caCertificate != new.caCertificate { keys.append("ca") }
        if old.revocationList != new.revocationList { keys.append("revoked") }
        if old.database != new.database { keys.append("database") }
        if old.ticketKey != new.ticketKey { keys.append("ticket_key") }
        if old.purgeKey != new.purgeKey { keys.append("purge_key") }
        if old.leaseSeconds != new.leaseSeconds { keys.append("lease_seconds") }
        if old.stallSeconds != new.stallSeconds { keys.append("stall_seconds") }
        if old.retrySeconds != new.retrySeconds { keys.append("retry_seconds") }
        if old.heartbeatSeconds != new.heartbeatSeconds { keys.append("heartbeat_seconds") }
        if old.inventoryMissingMax != new.inventoryMissingMax { keys.append("inventory_missing_max") }
        if old.taskHistoryDays != new.taskHistoryDays { keys.append("task_history_days") }
        if old.eventHistoryDays != new.eventHistoryDays { keys.append("event_history_days") }
        if old.runHistoryDays != new.runHistoryDays { keys.append("run_history_days") }
        if old.limits != new.limits { keys.append("listener limits") }
        if old.logLevel != new.logLevel { keys.append("log_level") }
        return keys.map { "coordinator." + $0 }
    }

    /// Applies a newly read configuration: the site is replaced for every part at once, then
    /// every queued task of a node, source or pairing the new site lacks is cancelled
    /// `config-removed`; running tasks finish. Throws `config-invalid` naming the keys that need
    /// a restart, leaving the old configuration in place.
    public func reload(_ new: CoordinatorConfiguration) async throws -> ReloadOutcome {
        let restart = Self.restartKeys(configuration, new)
        guard restart.isEmpty else {
            throw BackupError(
                .configInvalid,
                "The reload is refused: \(restart.joined(separator: ", ")) changed, which only a restart applies; the configuration in use stays."
            )
        }
        let site = new.site
        sites.replace(with: site)
        var cancelled: [Int64] = []
        for task in try await catalog.tasks(TaskListQuery(states: [.queued], limit: TaskListQuery.maxLimit)) {
            guard let why = Self.removal(of: task, in: site) else { continue }
            let failure = TaskFailure(code: .configRemoved, message: "Task \(task.id): \(why) (config-removed).")
            if try await catalog.cancelQueued(task.id, failure: failure) { cancelled.append(task.id) }
        }
        for node in site.nodes.keys { await signals.signal(node) }
        await signals.signal(TaskSignals.runs)
        logger.notice(
            "configuration reloaded",
            metadata: [
                "scm.nodes": "\(site.nodes.count)", "scm.pairings": "\(site.pairings.count)",
                "scm.cancelled": "\(cancelled.map(String.init).joined(separator: ","))",
            ])
        return ReloadOutcome(cancelled: cancelled)
    }

    /// Why a queued task has no place in `site` any more, or nil.
    static func removal(of task: TaskInfo, in site: SiteConfiguration) -> String? {
        guard site.node(task.node) != nil else { return "node '\(task.node)' is no longer in the site" }
        if task.kind == .backup, let source = task.source, site.node(task.node)?.sources[source] == nil {
            return "source '\(source)' of node '\(task.node)' is no longer in the site"
        }
        if task.kind == .transfer, let order = task.transfer {
            let origin = order.path.split(separator: "/").first.map(String.init) ?? ""
            for node in [order.sender, order.receiver] where site.node(node) == nil {
                return "node '\(node)' is no longer in the site"
            }
            let belongs =
                order.receiver == origin
                || site.pairings.contains { $0.server == origin && $0.backup == order.receiver }
            if !belongs { return "'\(order.receiver)' is no longer paired with '\(origin)'" }
        }
        return nil
    }

    /// Reloads from `path` on each SIGHUP, as a service of the process.
    public func reloadService(path: String) -> ReloadService { ReloadService(coordinator: self, path: path) }
}

/// On SIGHUP, reads the configuration file again and applies it (``Coordinator/reload(_:)``);
/// a broken file, or one that changes what needs a restart, is refused and logged with the
/// reason, and the configuration in use stays.
public struct ReloadService: Service {
    let coordinator: Coordinator
    let path: String

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            let logger = coordinator.logger
            do {
                let new = try CoordinatorConfiguration.load(path)
                let outcome = try await coordinator.reload(new)
                logger.notice(
                    "SIGHUP: configuration reloaded",
                    metadata: ["scm.file": "\(path)", "scm.cancelled": "\(outcome.cancelled.count)"])
            } catch {
                logger.error(
                    "SIGHUP: reload refused; the configuration in use stays",
                    metadata: [
                        "scm.file": "\(path)", "scm.reason": "\((error as? BackupError)?.message ?? "\(error)")",
                    ])
            }
        }
    }
}

extension Catalog {
    /// Cancels task `id` when it is still queued, recording why; false when it was not.
    func cancelQueued(_ id: Int64, failure: TaskFailure) async throws -> Bool {
        do {
            return try await updateTask(id) { (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                guard lifecycle.state == .queued else { throw .notLeasable }
                try lifecycle.cancel(failure: failure)
            } != nil
        } catch let refusal as TaskLifecycle.Refusal where refusal == .notLeasable || refusal == .finished {
            return false  // Leased or ended meanwhile: it runs or ran to its end.
        }
    }
}
