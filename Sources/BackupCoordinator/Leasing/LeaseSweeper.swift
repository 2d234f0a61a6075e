import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Expires the leases of agents that stopped renewing, on its own, every `interval` of the
/// monotonic clock: the task goes back to its node's queue (or fails when no attempt is left)
/// and the node's waiting pollers are woken, so a dead agent's task does not wait for the next
/// lease request to be noticed.
public struct LeaseSweeper: Service {
    let catalog: Catalog
    let signals: TaskSignals
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    let interval: Duration
    let logger: Logger

    /// A quarter of the lease, between 1 and 15 seconds: an expired lease is seen within that.
    public static func interval(leaseSeconds: Double) -> Duration {
        .milliseconds(Int64(min(15, max(1, leaseSeconds / 4)) * 1000))
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await clock.sleep(for: interval) } catch { return }  // Cancelled: shutting down.
                await sweep()
            }
        }
    }

    /// One sweep; a catalog error is logged and the next sweep tries again.
    public func sweep() async {
        do {
            for task in try await catalog.expireLeasedTasks(now: wallClock.currentDate) {
                logger.debug(
                    "lease expired",
                    metadata: [
                        "scm.task": "\(task.id)", "scm.node": "\(task.node)", "scm.state": "\(task.state.rawValue)",
                    ])
                await signals.signal(task.node)
            }
        } catch {
            logger.error("the lease sweep failed", metadata: ["scm.error": "\(error)"])
        }
    }
}
