import BackupCore
import BackupProtocol
import Foundation
import Logging

/// What a finished task tells the coordinator: a one-line summary and, for the catalog, what
/// it found or changed in the store.
struct TaskOutcome: Sendable {
    var detail: String
    var artifacts: ArtifactReport?
    /// A folder recovery's preview, sealed to the admin CLI's key (``SealedPreview``).
    var sealed: SealedPreview?
}

/// Where a running task stands; the renewal loop sends it with each renewal.
final class ProgressBox: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var value = TaskProgress(step: "starting")
    /// When the current step began, and its byte count then (for the rate).
    private var stepStart = (step: "starting", at: Date(), bytes: Int64(0))
    var current: TaskProgress {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
    func set(_ step: String, done: Int64? = nil, total: Int64? = nil) {
        lock.lock()
        let now = Date()
        if step != stepStart.step { stepStart = (step, now, done ?? 0) }
        let elapsed = now.timeIntervalSince(stepStart.at)
        let rate = done.flatMap { d in elapsed > 0.5 ? Double(d - stepStart.bytes) / elapsed : nil }
        value = TaskProgress(step: step, bytesDone: done, bytesTotal: total, bytesPerSecond: rate)
        lock.unlock()
    }
}

/// Runs one task against the agent's store with the BackupCore operations of the local
/// commands. Blocking work runs on its own thread, off the concurrency pool (as many at once
/// as the node's `max_tasks`: each lease loop leases its next task only when this one is
/// reported), under `cancellation`, which the agent triggers when it loses the lease.
struct TaskRunner: Sendable {
    let configuration: AgentConfiguration
    let progress: ProgressBox
    let logger: Logger
    var cancellation = WorkCancellation()

    /// Runs `task`; returns its outcome, or throws with the reason it failed.
    func run(_ task: TaskInfo) async throws -> TaskOutcome {
        try await runOffPool { configuration, progress, logger in
            try TaskRunner.runBlocking(task, configuration, progress, logger)
        }
    }

    /// Runs `body` (a backup or verify the agent does on its own while the hub is away) off the
    /// concurrency pool, as a task's work runs.
    func runOffPool(
        _ body: @escaping @Sendable (AgentConfiguration, ProgressBox, Logger) throws -> TaskOutcome
    ) async throws -> TaskOutcome {
        let configuration = configuration
        let progress = progress
        let logger = logger
        let cancellation = cancellation
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try cancellation.run { try body(configuration, progress, logger) } })
            }
        }
    }

    /// Runs `task` by its kind, one handler each (Tasks/); a transfer is the transfer runner's.
    static func runBlocking(
        _ task: TaskInfo, _ configuration: AgentConfiguration, _ progress: ProgressBox, _ logger: Logger
    ) throws -> TaskOutcome {
        switch try task.spec() {
        case .backup(let definition): try backup(definition, configuration, progress, logger)
        case .verify(let paths): try verify(paths, references: task.references, configuration, progress)
        case .inventory: try inventory(configuration, progress)
        case .purge(let order): try purge(order, task, configuration, progress)
        case .transfer:
            throw BackupError(.invalidArgument, "Transfer task \(task.id) is run by the transfer runner.")
        case .recover:
            throw BackupError(.invalidArgument, "Recover task \(task.id) is run by the recover runner.")
        }
    }

    /// Runs a pre-backup step and logs it (name, command, exit status, duration).
    static func runStep(_ step: PreBackupStep, source: String, _ logger: Logger) throws {
        let started = Date()
        var metadata: Logger.Metadata = [
            "scm.step": "\(step.name)", "scm.source": "\(source)",
            "scm.argv": "\(step.command.map { AuditText.escape($0) }.joined(separator: " "))",
        ]
        do {
            let outcome = try step.run()
            metadata["scm.status"] = "\(outcome.status)"
            metadata["scm.seconds"] = "\(String(format: "%.2f", outcome.seconds))"
            logger.info("pre-backup step ran", metadata: metadata)
        } catch {
            metadata["scm.seconds"] = "\(String(format: "%.2f", Date().timeIntervalSince(started)))"
            metadata["scm.error"] = "\(error)"
            logger.warning("pre-backup step failed", metadata: metadata)
            throw error
        }
    }

    static func copyReport(
        _ location: ArtifactLocation, size: Int64, dna: DNA?, state: CopyState, verifiedAt: Date? = nil,
        problem: String? = nil
    ) -> CopyReport {
        CopyReport(
            path: location.relativePath, origin: location.origin, kind: location.kind, source: location.source,
            stamp: location.stamp, size: size, sha256: dna?.sha256, md5: dna?.md5,
            revision: dna?.revision ?? location.revision,
            created: dna?.created, state: state, verifiedAt: verifiedAt, problem: problem, regressions: dna?.regressions
        )
    }

    /// The store for read-only tasks; an unmounted or other disk (no marker, another id) is
    /// refused, not read: its listing would tell the catalog the node's copies are gone.
    static func storeForReading(_ configuration: AgentConfiguration) throws -> Store {
        try configuration.store()
    }
}
