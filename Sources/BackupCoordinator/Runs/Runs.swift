import BackupCore
import BackupProtocol
import Foundation
import Logging

/// Starts runs, for the scheduler (a slot's sources) and for admins (`POST /v1/runs`): the run
/// and its backups are recorded together, a source whose previous backup still runs is recorded
/// `skipped`, and the run driver takes it from there.
public struct Runs: Sendable {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let signals: TaskSignals
    let wallClock: any WallClock
    let logger: Logger

    /// One source a run selects.
    public struct Selected: Sendable, Equatable {
        public var node: String
        public var source: String
    }

    /// The sources of the site a run of `node` and `source` selects (either may be nil: all):
    /// every source except an svn source a Trac environment of its node backs up with itself.
    public func select(node: String?, source: String?) throws -> [Selected] {
        if let node, site.node(node) == nil {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        let chosen = site.nodes.values.sorted { $0.name < $1.name }.filter { node == nil || $0.name == node }
            .flatMap { n -> [Selected] in
                let paired = Set(n.sources.values.compactMap { $0.svnSource?.name })
                return n.sources.keys.sorted().filter { name in
                    source == nil ? !paired.contains(name) : name == source
                }.map { Selected(node: n.name, source: $0) }
            }
        guard !chosen.isEmpty else {
            let what = [node.map { "node '\($0)'" }, source.map { "source '\($0)'" }].compactMap { $0 }
            throw BackupError(
                .nothingToRun,
                what.isEmpty
                    ? "The site configuration has no sources, so a run has nothing to back up."
                    : "No source of the site configuration matches \(what.joined(separator: " and ")).")
        }
        return chosen
    }

    /// Records a run of `selected` and queues its backups; wakes their agents and the driver.
    public func start(
        _ selected: [Selected], trigger: RunTrigger, slot: Date? = nil, requestedBy: String? = nil
    ) async throws -> RunInfo {
        var starts: [Catalog.RunStart] = []
        for s in selected {
            guard let definition = site.node(s.node)?.sources[s.source] else {
                throw BackupError(.unknownSource, "Node '\(s.node)' has no source '\(s.source)'.")
            }
            let busy = try await catalog.backupActive(node: s.node, source: s.source)
            starts.append(
                Catalog.RunStart(
                    node: s.node, source: s.source, definition: definition,
                    copiesWanted: site.copiesWanted(node: s.node, source: s.source),
                    skipReason: busy ? "skipped: still running (the previous backup of it is queued or running)" : nil))
        }
        let (run, backups) = try await catalog.startRun(
            trigger: trigger, slot: slot, requestedBy: requestedBy, sources: starts, now: wallClock.currentDate,
            maxAttempts: site.runs.maxAttempts)
        for node in Set(backups.map(\.node)) { await signals.signal(node) }
        await signals.signal(TaskSignals.runs)
        logger.info(
            "run started",
            metadata: [
                "scm.run": "\(run.id)", "scm.trigger": "\(trigger.rawValue)", "scm.sources": "\(selected.count)",
                "scm.backups": "\(backups.count)", "scm.operator": "\(requestedBy ?? "-")",
            ])
        return run
    }

    /// Run `id`; `unknown-run` when the catalog has none.
    public func show(_ id: Int64) async throws -> RunInfo {
        guard let run = try await catalog.run(id) else {
            throw BackupError(.unknownRun, "There is no run \(id) (runs older than the history are pruned).")
        }
        return run
    }

    public func list(_ query: RunListQuery) async throws -> [RunInfo] {
        try await catalog.runs(query)
    }
}
