import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Carries every running run forward (``RunPlanner``): once a source's backup has made its
/// artifacts, a transfer of each to each backup node paired with the source's node (within the
/// receiver's `max_transfers`, not to a node offline, for at most `offline_wait`), then the
/// copies the receivers verified on arrival; the run ends when all its sources do. It looks
/// when a task result arrives (``TaskSignals/runs``) and at least every ``interval``, and
/// concludes everything from the catalog each time, so that a restart resumes where the hub
/// stopped.
public struct RunDriver: Service {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let desk: TransferDesk
    let purges: PurgeStage
    let signals: TaskSignals
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    /// A node silent for three heartbeats is offline.
    let heartbeatSeconds: Int
    let logger: Logger

    /// Ends a catalog rebuild once each of its inventories has ended, saying what it found.
    func concludeRebuild() async throws {
        guard try await catalog.rebuilding(),
            let done = try await catalog.finishRebuildIfDone(now: wallClock.currentDate)
        else { return }
        logger.notice(
            "catalog rebuilt",
            metadata: [
                "scm.artifacts": "\(done.artifacts ?? 0)", "scm.copies": "\(done.copies ?? 0)",
                "scm.unconfirmed": "\(done.unconfirmedCopies ?? 0)",
                "scm.failed": "\(done.failedNodes?.joined(separator: ",") ?? "-")",
            ])
    }

    /// The longest wait between two looks.
    public static let interval: Duration = .seconds(5)

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let ticket = await signals.ticket(for: TaskSignals.runs)
                do {
                    _ = try await advanceAll()
                    try await concludeRebuild()
                } catch {
                    _ = catalog.damage.note(error)
                    logger.error("the run driver's look failed", metadata: ["scm.error": "\(error)"])
                }
                if let stop = catalog.damage.error { throw stop }
                let (signals, clock) = (signals, clock)
                await signals.wait(ticket, node: TaskSignals.runs, atMost: Self.interval.inSeconds, clock: clock)
            }
        }
    }

    /// One look at every running run; returns how many still run.
    @discardableResult
    public func advanceAll() async throws -> Int {
        var running = 0
        for run in try await catalog.runningRuns() where try await advance(run).state == .running {
            running += 1
        }
        return running
    }

    /// Advances one run: each unfinished source a step, then the run's state.
    func advance(_ run: RunInfo) async throws -> RunInfo {
        let now = wallClock.currentDate
        let tasks = try await catalog.tasks(ofRun: run.id)
        let byId = Dictionary(tasks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let transfers = tasks.filter { $0.kind == .transfer }
        let nodes = try await catalog.nodes(now: now, onlineWithin: Double(3 * heartbeatSeconds))
        let online = Set(nodes.filter(\.online).map(\.name))
        let lastSeen = Dictionary(
            nodes.compactMap { n in n.lastHeartbeatAt.map { (n.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let waits = try await catalog.runWaits(run.id)
        var room: [String: Int] = [:]
        var sources: [RunSourceInfo] = []
        for entry in run.sources {
            guard !entry.state.isFinal else {
                sources.append(entry)
                continue
            }
            let backup = entry.backupTask.flatMap { byId[$0] }
            var made: [ArtifactInfo] = []
            if let backup, backup.state == .succeeded {
                let names = [entry.source, backup.definition?.svnSource?.name].compactMap { $0 }
                made = try await catalog.artifactsMade(origin: entry.node, sources: names, since: backup.createdAt)
            }
            let receivers = site.receivers(of: entry.node)
            for receiver in receivers where room[receiver] == nil {
                room[receiver] = site.maxTransfers(to: receiver) - (try await catalog.activeTransferCount(to: receiver))
            }
            let facts = RunPlanner.Facts(
                backup: backup, made: made, transfers: transfers, receivers: receivers, online: online,
                lastSeen: lastSeen, room: room,
                newerRunMade: try await catalog.newerRunMade(node: entry.node, source: entry.source, after: run.id),
                waitingSince: waits[entry.node + "/" + entry.source], runStartedAt: run.startedAt, now: now,
                offlineWait: site.runs.offlineWait)
            var step = RunPlanner.advance(entry, facts)
            for transfer in step.queue {
                let task = try await desk.queue(
                    path: transfer.path, artifact: transfer.artifact, from: transfer.from, to: transfer.to,
                    purpose: .transfer, operatorName: "run \(run.id)", now: now, run: run.id,
                    maxAttempts: site.runs.maxAttempts)
                room[transfer.to, default: 0] -= 1
                if let i = step.entry.copies.firstIndex(where: { $0.path == transfer.path && $0.node == transfer.to }) {
                    step.entry.copies[i].task = task.id
                }
            }
            if step.entry != entry || step.waitingSince != waits[entry.node + "/" + entry.source] {
                try await catalog.saveRunSource(run.id, step.entry, waitingSince: step.waitingSince)
                if step.entry.state.isFinal {
                    logger.info(
                        "run source finished",
                        metadata: [
                            "scm.run": "\(run.id)", "scm.node": "\(entry.node)", "scm.source": "\(entry.source)",
                            "scm.state": "\(step.entry.state.rawValue)", "scm.reason": "\(step.entry.reason ?? "-")",
                        ])
                }
            }
            sources.append(step.entry)
        }
        var advanced = run
        advanced.sources = sources
        let state = RunPlanner.state(of: sources)
        if state != .running {
            try await purgeStage(run, sources, tasks)
            try await catalog.finishRun(run.id, state: state, now: now)
            // The hub's self-backup follows every run (``SelfBackupService``).
            await signals.signal(TaskSignals.selfBackup)
            advanced.state = state
            advanced.finishedAt = now
            logger.notice(
                "run finished",
                metadata: ["scm.run": "\(run.id)", "scm.state": "\(state.rawValue)", "scm.sources": "\(sources.count)"])
        }
        return advanced
    }

    /// The run's last stage: a purge on every node holding copies of its sources, whether or
    /// not its transfers succeeded (a failing night must not stop purging, or disks fill).
    /// Queued before the run is marked finished, so a hub killed in between queues it at its
    /// restart; a node that has a purge of this run already is not given another. A node
    /// the stage cannot plan is logged and skipped: the run still ends.
    func purgeStage(_ run: RunInfo, _ sources: [RunSourceInfo], _ tasks: [TaskInfo]) async throws {
        let done = Set(tasks.filter { $0.kind == .purge }.map(\.node))
        let holders = try await purges.holders(of: sources.map { ($0.node, $0.source) })
        for node in holders where !done.contains(node) && site.node(node) != nil {
            do {
                let plan = try await purges.apply(node: node, by: "run \(run.id)", run: run.id)
                if plan.task == nil, !plan.deletions.isEmpty {
                    logger.notice(
                        "purge stage ordered nothing",
                        metadata: [
                            "scm.run": "\(run.id)", "scm.node": "\(node)", "scm.reason": "\(plan.paused ?? "-")",
                        ])
                }
            } catch let error as BackupError where error.code == .noPurgeKey {
                logger.debug("no purge key: the purge stage orders nothing", metadata: ["scm.node": "\(node)"])
            }
        }
    }
}
