import BackupCore
import BackupProtocol
import Foundation
import Logging

/// What a finished task tells the coordinator: a one-line summary and, for the catalog, what
/// it found or changed in the store.
struct TaskOutcome: Sendable {
    var detail: String
    var artifacts: ArtifactReport?
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
/// commands. Blocking work runs on its own thread, off the concurrency pool (one at a time:
/// the agent leases its next task only when this one is reported), under `cancellation`, which
/// the agent triggers when it loses the lease.
struct TaskRunner: Sendable {
    let configuration: AgentConfiguration
    let progress: ProgressBox
    let logger: Logger
    var cancellation = WorkCancellation()

    /// Runs `task`; returns its outcome, or throws with the reason it failed.
    func run(_ task: TaskInfo) async throws -> TaskOutcome {
        let configuration = configuration
        let progress = progress
        let logger = logger
        let cancellation = cancellation
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try cancellation.run { try TaskRunner.runBlocking(task, configuration, progress, logger) }
                    })
            }
        }
    }

    static func runBlocking(
        _ task: TaskInfo, _ configuration: AgentConfiguration, _ progress: ProgressBox, _ logger: Logger
    ) throws -> TaskOutcome {
        switch task.kind {
        case .backup:
            guard let definition = task.definition else {
                throw BackupError(
                    .invalidArgument,
                    "Backup task \(task.id) carries no source definition; the coordinator must send one.")
            }
            var spec = try configuration.spec(definition)
            let store = try Store.openForWriting(configuration.storePath)
            if let step = spec.preBackup {
                progress.set("pre-backup step \(step.name)")
                try runStep(step, source: definition.name, logger)
                spec.preBackup = nil
            }
            progress.set("archiving \(definition.name)")
            var published: [PublishedArtifact]
            var specs = [spec]
            if let svn = definition.svnSource {
                let svnSpec = try configuration.spec(SourceDefinition(name: svn.name, kind: .svn, path: svn.path))
                specs.append(svnSpec)
                let pair = try store.backupPair(svn: svnSpec, trac: spec, node: configuration.node)
                published = [pair.trac, pair.svn]
            } else {
                published = [try store.backup(spec, node: configuration.node)]
            }
            // Checked again after the snapshot: a link swapped in meanwhile fails the backup.
            for checked in specs {
                let again = try configuration.spec(
                    SourceDefinition(name: checked.name, kind: checked.kind, path: checked.path))
                guard again.path == checked.path else {
                    throw BackupError(
                        .refused,
                        "Source '\(checked.name)' moved to '\(again.path)' while it was archived from '\(checked.path)'; the backup is refused."
                    )
                }
            }
            let now = Date()
            let copies = published.map { p in
                // Each was read back against its digests before it was published.
                copyReport(p.location, size: p.dna.size, dna: p.dna, state: .intact, verifiedAt: now)
            }
            let summary = published.map {
                "\($0.location.source) revision \($0.dna.revision ?? "-") as \($0.location.relativePath) (\($0.dna.size) bytes)"
                    + ($0.warnings.isEmpty ? "" : " [\($0.warnings.joined(separator: "; "))]")
            }
            return TaskOutcome(
                detail: "backed up " + summary.joined(separator: " and "),
                artifacts: ArtifactReport(complete: false, copies: copies))
        case .verify:
            let store = try storeForReading(configuration)
            // A verify names its copies (the oldest-verified within a budget) or takes them all.
            let named = try task.artifacts.map { paths in
                try paths.map { store.path(of: try store.location(ofRelative: $0)) }
                    .filter { try FileSystem.linkStatus($0) != nil }
            }
            let artifacts = try named.map { $0.isEmpty ? [] : try store.scan($0).artifacts } ?? store.scan().artifacts
            var copies: [CopyReport] = []
            var mutants: [String] = []
            var unverified = 0
            for (i, artifact) in artifacts.enumerated() {
                progress.set("verifying \(i + 1) of \(artifacts.count)")
                let result = store.verify(artifact)
                guard let location = artifact.location else { continue }
                let problem: String?
                switch result.status {
                case .intact: problem = nil
                case .mutant(let reasons):
                    // Never deleted or overwritten: moved aside, reported, repaired from a good copy.
                    let moved = try store.quarantine(artifact)
                    problem = reasons.joined(separator: "; ") + "; quarantined as \(moved)"
                    mutants.append(location.relativePath)
                case .missingSidecar:
                    problem = "no sidecar"
                    unverified += 1
                case .invalidSidecar(let why), .unreadable(let why):
                    problem = why
                    unverified += 1
                }
                let state: CopyState =
                    switch result.status {
                    case .intact: .intact
                    case .mutant: .quarantined
                    case .missingSidecar: .missingSidecar
                    case .invalidSidecar: .invalidSidecar
                    case .unreadable: .unreadable
                    }
                copies.append(
                    copyReport(
                        location, size: artifact.size, dna: result.dna, state: state, verifiedAt: Date(),
                        problem: problem))
            }
            var detail =
                "verified \(artifacts.count) artifacts: \(artifacts.count - mutants.count - unverified) intact, \(mutants.count) mutant, \(unverified) could not be verified"
            if !mutants.isEmpty { detail += "; mutants (quarantined): " + mutants.joined(separator: ", ") }
            return TaskOutcome(detail: detail, artifacts: ArtifactReport(complete: named == nil, copies: copies))
        case .inventory:
            let store = try storeForReading(configuration)
            progress.set("listing the store")
            let scan = try store.scan()
            var copies: [CopyReport] = []
            for artifact in scan.artifacts {
                guard let location = artifact.location else { continue }
                var dna: DNA?
                var problem: String?
                if artifact.hasSidecar {
                    // A sidecar that cannot be used is listed without digests, with the reason.
                    do {
                        dna = try DNA.decode(
                            try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
                    } catch {
                        problem = "\(error)"
                    }
                } else {
                    problem = "no sidecar"
                }
                copies.append(
                    copyReport(location, size: artifact.size, dna: dna, state: .unverified, problem: problem))
            }
            let bytes = scan.artifacts.reduce(Int64(0)) { $0 + $1.size }
            return TaskOutcome(
                detail: "\(scan.artifacts.count) artifacts, \(bytes) bytes, \(scan.partials.count) partials",
                artifacts: ArtifactReport(complete: true, copies: copies))
        case .transfer:
            throw BackupError(.invalidArgument, "Transfer task \(task.id) is run by the transfer runner.")
        case .purge:
            guard let keyPath = configuration.purgeKeyPath else {
                throw BackupError(
                    .refused,
                    "Node '\(configuration.node)' has no purge_key in its agent.toml, so it carries out no purge order; nothing was deleted."
                )
            }
            guard let envelope = task.purgeOrder else {
                throw BackupError(
                    .refused, "Purge task \(task.id) carries no signed purge order; nothing was deleted.")
            }
            let key = try Ed25519PEM.readPublicKey(keyPath)
            let order: PurgeOrder
            do throws(SignedEnvelope.Refusal) {
                order = try PurgeOrder.verify(
                    envelope, key: key, node: configuration.node, taskId: task.id, fencingToken: task.fencingToken)
            } catch {
                throw BackupError(
                    .refused, "Purge task \(task.id) is refused (\(error.code)): \(error.message) Nothing was deleted.")
            }
            let store = try storeForReading(configuration)
            try store.updateLedger { ledger in
                if let refusal = ledger.refusal(
                    epoch: order.epoch, task: order.taskId, token: order.fencingToken, id: order.id)
                {
                    throw BackupError(
                        .refused, "Purge order \(order.id) is refused: \(refusal.reason). Nothing was deleted.")
                }
                ledger.note(
                    epoch: order.epoch, task: order.taskId, token: order.fencingToken, spent: order.id,
                    expiresAt: order.expiresAt, now: Date())
            }
            progress.set("deleting \(order.copies.count) artifacts")
            let expected = Dictionary(
                order.copies.map { ($0.path, ArtifactDigests(size: $0.size, sha256: $0.sha256, md5: $0.md5)) },
                uniquingKeysWith: { first, _ in first })
            let items = try store.purge(exactly: order.copies.map(\.path), expected: expected)
            let relative = { (item: PurgeItem) in String(item.artifact.path.dropFirst(store.root.count + 1)) }
            let deleted = items.filter { !$0.keep }.map(relative)
            let kept = items.filter(\.keep).map { "\(relative($0)) (\($0.reasons.joined(separator: ", ")))" }
            // A copy whose bytes were not the order's is quarantined and reported as such.
            let quarantined = items.filter { $0.quarantined != nil }.compactMap { item -> CopyReport? in
                guard let location = item.artifact.location else { return nil }
                return copyReport(
                    location, size: item.artifact.size, dna: nil, state: .quarantined,
                    problem: item.reasons.joined(separator: "; "))
            }
            return TaskOutcome(
                detail: "deleted \(deleted.count) artifacts"
                    + (kept.isEmpty ? "" : "; kept \(kept.joined(separator: ", "))"),
                artifacts: ArtifactReport(complete: false, copies: quarantined, deleted: deleted))
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

    /// The store for read-only tasks; an unmounted store (no marker) is refused, not read.
    static func storeForReading(_ configuration: AgentConfiguration) throws -> Store {
        let store = Store(root: configuration.storePath)
        guard try store.readMarker() != nil else {
            throw BackupError(
                .storeMarker,
                "Store '\(store.root)' has no marker file: is its disk mounted? The agent refuses to work in it.")
        }
        return store
    }
}
