import BackupCore
import BackupProtocol
import Foundation

/// The run graph's decisions as pure functions over what the catalog holds: where one source
/// of a run stands (backup → a transfer to each paired backup node → the receiver's
/// verification on arrival), which transfers start now, and the run's state once every source
/// is done. No I/O, so every rule is tested without SQLite (``RunDriver`` gathers the facts and
/// carries the steps out). Because each step is concluded again from the catalog, a hub killed
/// at any point concludes the same after its restart, and queues nothing twice.
///
/// The purge stage joins here after the copies: a source whose copies are reached becomes
/// eligible for its node's retention (the purge issue).
enum RunPlanner {
    /// What the catalog says about one source of a run.
    struct Facts: Sendable {
        /// The source's backup task.
        var backup: TaskInfo?
        /// The artifacts that backup made, from the catalog.
        var made: [ArtifactInfo] = []
        /// The run's transfer tasks.
        var transfers: [TaskInfo] = []
        /// The backup nodes paired with the source's node.
        var receivers: [String] = []
        /// Nodes whose agent is online, and when each node was last heard from.
        var online: Set<String> = []
        var lastSeen: [String: Date] = [:]
        /// Transfers each receiver may still be sent now (its `max_transfers` less those on their way).
        var room: [String: Int] = [:]
        /// A newer run made a newer artifact of this source.
        var newerRunMade = false
        /// When the driver first saw the succeeded backup without its artifact in the catalog.
        var waitingSince: Date?
        var runStartedAt: Date
        var now: Date
        var offlineWait: TimeInterval
    }

    /// A transfer to queue for the run.
    struct Transfer: Sendable, Equatable {
        var artifact: ArtifactInfo
        var path: String
        var from: String
        var to: String
    }

    /// The source's new standing and the transfers to queue (whose task ids the driver fills in).
    struct Step: Sendable {
        var entry: RunSourceInfo
        var waitingSince: Date?
        var queue: [Transfer] = []
    }

    /// How long a succeeded backup's artifact may take to appear in the catalog (its result is
    /// recorded just after the task's outcome), or a pushed copy its receiver's report, before
    /// the source or the copy fails.
    static let artifactGrace: TimeInterval = 600

    static func advance(_ entry: RunSourceInfo, _ facts: Facts) -> Step {
        var step = Step(entry: entry, waitingSince: facts.waitingSince)
        guard !entry.state.isFinal else { return step }
        let now = facts.now
        func finish(_ state: RunSourceState, _ reason: String?) -> Step {
            step.entry.state = state
            step.entry.reason = reason
            step.entry.finishedAt = now
            step.waitingSince = nil
            return step
        }
        guard let backup = facts.backup else {
            return finish(
                .failed, "its backup task \(entry.backupTask.map(String.init) ?? "?") is gone from the catalog")
        }
        switch backup.state {
        case .queued, .leased:
            step.entry.state = .backingUp
            if backup.state == .queued && !facts.online.contains(entry.node) {
                let since =
                    facts.lastSeen[entry.node].map { "last heard from \(WireJSON.format($0))" } ?? "never registered"
                step.entry.reason = "\(entry.node) is offline (\(since)); backup task \(backup.id) waits for it"
            } else {
                step.entry.reason =
                    backup.state == .queued && backup.attempts > 0
                    ? "backup task \(backup.id) waits to be tried again after: \(backup.lastError ?? "a failure")" : nil
            }
            return step
        case .failed, .cancelled:
            return finish(
                .failed, "backup task \(backup.id) \(backup.state.rawValue): \(backup.lastError ?? "no reason given")")
        case .succeeded:
            break
        }
        let origin = entry.node
        let made = facts.made.filter { $0.copies.contains { $0.node == origin } }
        guard !made.isEmpty else {
            let since = facts.waitingSince ?? now
            if now.timeIntervalSince(since) > artifactGrace {
                return finish(.failed, "backup task \(backup.id) succeeded, but the catalog holds no artifact of it")
            }
            step.entry.state = .backingUp
            step.entry.reason = "waiting for the catalog to record what backup task \(backup.id) made"
            step.waitingSince = since
            return step
        }
        step.waitingSince = nil
        var room = facts.room
        var copies: [RunCopy] = []
        var artifacts: [String] = []
        for artifact in made {
            guard let held = artifact.copies.first(where: { $0.node == origin }) else { continue }
            artifacts.append(held.path)
            for receiver in facts.receivers {
                let before = entry.copies.first { $0.path == held.path && $0.node == receiver }
                var copy = before ?? RunCopy(path: held.path, node: receiver, state: .waiting)
                if copy.state == .verified || copy.state == .failed {
                    copies.append(copy)
                    continue
                }
                let task =
                    before?.task.flatMap { id in facts.transfers.first { $0.id == id } }
                    ?? facts.transfers.last { $0.transfer?.receiver == receiver && $0.transfer?.path == held.path }
                let there = artifact.copies.first { $0.node == receiver }
                if there?.state == .intact {
                    copy.state = .verified
                    copy.task = task?.id ?? copy.task
                    copy.reason = nil
                } else if let task {
                    copy.task = task.id
                    switch task.state {
                    case .queued, .leased:
                        copy.state = .transferring
                        copy.reason =
                            task.state == .queued && task.attempts > 0
                            ? "waits to be tried again after: \(task.lastError ?? "a failure")" : nil
                    case .succeeded:
                        // A pushed copy is vouched for by its receiver's own report, which may
                        // reach the hub after the sender's result: it is waited for a while.
                        let ended = task.endedAt ?? now
                        if now.timeIntervalSince(ended) <= artifactGrace {
                            copy.state = .transferring
                            copy.reason = "waiting for \(receiver)'s report of the copy transfer task \(task.id) sent"
                        } else {
                            copy.state = .failed
                            copy.reason =
                                "transfer task \(task.id) succeeded, but the catalog holds the copy as \(there?.state.rawValue ?? "absent")"
                        }
                    case .failed, .cancelled:
                        copy.state = .failed
                        copy.reason =
                            "transfer task \(task.id) \(task.state.rawValue): \(task.lastError ?? "no reason given")"
                    }
                } else if artifact.confirmed != true || held.state.isUnfitToSend {
                    copy.state = .failed
                    copy.reason =
                        "the copy on \(origin) is \(held.state.rawValue)\(artifact.confirmed == true ? "" : ", not confirmed by its backup"); it is not sent"
                } else if !facts.online.contains(receiver) {
                    let since = facts.lastSeen[receiver] ?? facts.runStartedAt
                    if now.timeIntervalSince(since) > facts.offlineWait {
                        copy.state = .failed
                        copy.reason =
                            "\(receiver) has been offline since \(WireJSON.format(since)), longer than offline_wait"
                    } else {
                        copy.state = .waiting
                        copy.reason = "\(receiver) is offline (last heard from \(WireJSON.format(since)))"
                    }
                } else if room[receiver, default: 0] <= 0 {
                    copy.state = .waiting
                    copy.reason = "\(receiver) has its max_transfers on their way"
                } else {
                    room[receiver, default: 0] -= 1
                    copy.state = .transferring
                    copy.reason = nil
                    step.queue.append(Transfer(artifact: artifact, path: held.path, from: origin, to: receiver))
                }
                copies.append(copy)
            }
        }
        step.entry.artifacts = artifacts
        step.entry.copies = copies
        if copies.allSatisfy({ $0.state == .verified || $0.state == .failed }) && step.queue.isEmpty {
            return finish(
                step.entry.verifiedCopies >= entry.copiesWanted ? .succeeded : .partial, shortReason(step.entry))
        }
        if facts.newerRunMade && step.queue.isEmpty {
            return finish(.superseded, "a newer run made a newer artifact of \(entry.source)")
        }
        step.entry.state = .transferring
        step.entry.reason = nil
        return step
    }

    /// Why a source ended short of its copies (nil when it did not).
    static func shortReason(_ entry: RunSourceInfo) -> String? {
        guard entry.verifiedCopies < entry.copiesWanted else { return nil }
        let failed = entry.copies.filter { $0.state == .failed }
        return "\(entry.verifiedCopies) of \(entry.copiesWanted) verified copies"
            + (failed.isEmpty
                ? "" : "; " + failed.map { "\($0.node): \($0.reason ?? "failed")" }.joined(separator: "; "))
    }

    /// The run's state from its sources'; running while any is.
    static func state(of sources: [RunSourceInfo]) -> RunState {
        guard sources.allSatisfy(\.state.isFinal) else { return .running }
        let states = sources.map(\.state)
        let short = states.filter { $0 == .failed || $0 == .partial || $0 == .superseded }
        if short.isEmpty { return .succeeded }
        if states.allSatisfy({ $0 == .failed || $0 == .skipped }) { return .failed }
        if short.allSatisfy({ $0 == .superseded }) { return .superseded }
        return .partial
    }
}
