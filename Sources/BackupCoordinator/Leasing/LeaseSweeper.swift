import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Expires the leases of agents that stopped renewing, and fails tasks that ran past their
/// kind's `max_duration` (`timeout`), on its own, every `interval` of the
/// monotonic clock: the task goes back to its node's queue (or fails when no attempt is left)
/// and the node's waiting pollers are woken, so a dead agent's task does not wait for the next
/// lease request to be noticed. It also prunes the catalog's history, at the first sweep and then
/// about every ``pruneInterval`` (a prune is one write transaction that may take seconds on a large
/// catalog, so it is not repeated every sweep), and gives the heap's free pages back after
/// each regular sweep (``HeapTrim``).
public struct LeaseSweeper: Service {
    let catalog: Catalog
    let signals: TaskSignals
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    let interval: Duration
    /// The site, for each kind's `max_duration`: a lease held longer fails the task `timeout`.
    let sites: SiteSource
    let history: HistoryRetention
    let logger: Logger

    /// A quarter of the lease, between 1 and 15 seconds: an expired lease is seen within that.
    public static func interval(leaseSeconds: Double) -> Duration {
        .milliseconds(Int64(min(15, max(1, leaseSeconds / 4)) * 1000))
    }

    /// How often the history is pruned.
    public static let pruneInterval: Duration = .seconds(3600)

    public func run() async throws {
        // Counted in sweeps and measured waits: the sleeps are on the monotonic clock.
        let sweepsPerPrune = max(1, Int(Self.pruneInterval / interval))
        try await cancelWhenGracefulShutdown {
            var sweepsSincePrune = sweepsPerPrune
            var sinceSweep = Duration.zero
            while !Task.isCancelled {
                // Until the next regular sweep, or just past the earliest lease confirmation
                // due before it; a lease handed out meanwhile wakes the wait to plan again.
                let ticket = await signals.ticket(for: TaskSignals.sweeper)
                var wait = interval - sinceSweep
                if let due = await signals.nextConfirmation {
                    let seconds = max(0, due.timeIntervalSince(wallClock.currentDate)) + 0.05
                    wait = min(wait, .milliseconds(Int64(seconds * 1000)))
                }
                let (signals, clock) = (signals, clock)
                sinceSweep += await clock.measure {
                    await signals.wait(ticket, node: TaskSignals.sweeper, atMost: max(0, wait.inSeconds), clock: clock)
                }
                if Task.isCancelled { return }  // Shutting down.
                // A damaged catalog (seen by a request or a sweep) stops the hub: this service
                // fails, and the group shuts the process down.
                if let stop = catalog.damage.error { throw stop }
                let confirmationsDue = await signals.sweptConfirmations(at: wallClock.currentDate)
                guard sinceSweep >= interval || confirmationsDue else { continue }
                if sweepsSincePrune >= sweepsPerPrune {
                    await pruneHistory()
                    sweepsSincePrune = 0
                }
                sweepsSincePrune += 1
                sinceSweep = .zero
                await sweep()
                if let stop = catalog.damage.error { throw stop }
                HeapTrim.trim()
            }
        }
    }

    /// Removes finished tasks and events older than the history retention; an error is logged
    /// and the next prune tries again.
    public func pruneHistory() async {
        do {
            let now = wallClock.currentDate
            let pruned = try await catalog.pruneHistory(history, now: now)
            let runs = try await catalog.pruneRuns(
                finishedBefore: now.addingTimeInterval(-Double(history.runDays) * 86_400))
            if runs > 0 {
                logger.info(
                    "runs pruned to their summaries",
                    metadata: ["scm.runs": "\(runs)", "scm.runDays": "\(history.runDays)"])
            }
            if pruned.tasks + pruned.events > 0 {
                logger.info(
                    "history pruned",
                    metadata: [
                        "scm.tasks": "\(pruned.tasks)", "scm.events": "\(pruned.events)",
                        "scm.taskDays": "\(history.taskDays)", "scm.eventDays": "\(history.eventDays)",
                    ])
            }
        } catch {
            _ = catalog.damage.note(error)
            logger.error("pruning the catalog's history failed", metadata: ["scm.error": "\(error)"])
        }
    }

    /// One sweep of expired leases and of tasks past their `max_duration`; a catalog error is
    /// logged and the next sweep tries again.
    public func sweep() async {
        do {
            for task in try await catalog.timeOutLeasedTasks(now: wallClock.currentDate, limits: sites.current.runs) {
                logger.warning(
                    "task timed out",
                    metadata: [
                        "scm.task": "\(task.id)", "scm.node": "\(task.node)", "scm.kind": "\(task.kind.rawValue)",
                        "scm.reason": "\(task.lastError ?? "-")",
                    ])
                await signals.signal(TaskSignals.runs)
            }
            for task in try await catalog.expireLeasedTasks(now: wallClock.currentDate) {
                logger.debug(
                    "lease expired",
                    metadata: [
                        "scm.task": "\(task.id)", "scm.node": "\(task.node)", "scm.state": "\(task.state.rawValue)",
                    ])
                await signals.signal(task.node)
            }
        } catch {
            _ = catalog.damage.note(error)
            logger.error("the lease sweep failed", metadata: ["scm.error": "\(error)"])
        }
    }
}

/// How long the catalog keeps finished tasks and audit events (``CoordinatorConfiguration``'s
/// `taskHistoryDays` and `eventHistoryDays`).
public struct HistoryRetention: Sendable {
    public var taskDays: Int
    public var eventDays: Int
    /// Days a finished run keeps its per-source record (``Catalog/pruneRuns(finishedBefore:limit:)``).
    public var runDays: Int

    public init(taskDays: Int, eventDays: Int, runDays: Int = 400) {
        self.taskDays = taskDays
        self.eventDays = eventDays
        self.runDays = runDays
    }
}
