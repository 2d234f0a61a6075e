import BackupCore
import Foundation

/// A run: one firing of one schedule slot (or one `scm-backup run`) over the sources it
/// selects. For each source: the backup on its node, then a transfer of what it made to each
/// backup node paired with that node (push or pull as the pairing says), each proven by the
/// receiver's verification on arrival. `GET /v1/runs`, `GET /v1/runs/{id}`, `POST /v1/runs`.
public enum RunState: String, Codable, Sendable, CaseIterable {
    /// Some source still has work to do.
    case running
    /// Every source reached its `copies` verified copies.
    case succeeded
    /// Some sources did, or made an artifact short of its copies; others failed.
    case partial
    /// No source made an artifact.
    case failed
    /// What it still waited for was overtaken: a newer run of each of its unfinished sources
    /// made a newer artifact.
    case superseded

    public var isFinal: Bool { self != .running }
}

/// Where one source of a run stands.
public enum RunSourceState: String, Codable, Sendable, CaseIterable {
    /// Its backup is queued or running.
    case backingUp = "backing-up"
    /// Its artifacts are on their way to the backup nodes.
    case transferring
    /// Its artifacts are verified on at least `copies` backup nodes.
    case succeeded
    /// It made artifacts, fewer than `copies` verified copies of them were reached.
    case partial
    /// Its backup failed (the reason says why).
    case failed
    /// The slot came while the previous backup of the source still ran: nothing was queued.
    case skipped
    /// A newer run made a newer artifact of it before this one's copies were all reached.
    case superseded

    public var isFinal: Bool { self != .backingUp && self != .transferring }
}

/// One copy a run wants: the artifact at `path` on backup node `node`.
public struct RunCopy: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// Not queued yet: the receiver is offline, or has `max_transfers` on their way.
        case waiting
        /// Its transfer is queued or running.
        case transferring
        /// The receiver holds it, verified on arrival (or by a later verify).
        case verified
        /// Its transfer failed for good, or the receiver stayed offline past `offline_wait`.
        case failed
    }

    public var path: String
    public var node: String
    public var state: State
    /// The transfer task that brings it, once queued.
    public var task: Int64?
    /// Why it waits or failed.
    public var reason: String?

    public init(path: String, node: String, state: State, task: Int64? = nil, reason: String? = nil) {
        self.path = path
        self.node = node
        self.state = state
        self.task = task
        self.reason = reason
    }
}

/// One source of a run.
public struct RunSourceInfo: Codable, Sendable, Equatable {
    public var node: String
    public var source: String
    public var state: RunSourceState
    /// The backup task (absent when the source was skipped).
    public var backupTask: Int64?
    /// Store-relative paths of the artifacts its backup made (a Trac environment with its svn
    /// repository makes two).
    public var artifacts: [String]
    /// Verified copies wanted of each artifact (its `copies`, by default every paired backup node).
    public var copiesWanted: Int
    /// The copies on the backup nodes, with their states.
    public var copies: [RunCopy]
    /// Why it failed, was skipped or waits.
    public var reason: String?
    public var finishedAt: Date?

    public init(
        node: String, source: String, state: RunSourceState, backupTask: Int64? = nil, artifacts: [String] = [],
        copiesWanted: Int, copies: [RunCopy] = [], reason: String? = nil, finishedAt: Date? = nil
    ) {
        self.node = node
        self.source = source
        self.state = state
        self.backupTask = backupTask
        self.artifacts = artifacts
        self.copiesWanted = copiesWanted
        self.copies = copies
        self.reason = reason
        self.finishedAt = finishedAt
    }

    /// Verified copies of its least-copied artifact.
    public var verifiedCopies: Int {
        artifacts.map { path in copies.filter { $0.path == path && $0.state == .verified }.count }.min() ?? 0
    }
}

/// What started a run.
public enum RunTrigger: String, Codable, Sendable, CaseIterable {
    /// A slot of the sources' schedule.
    case schedule
    /// `scm-backup run` (`POST /v1/runs`).
    case manual
}

public struct RunInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var trigger: RunTrigger
    /// The schedule slot it fired for (scheduled runs).
    public var slot: Date?
    /// The admin who started it (manual runs).
    public var requestedBy: String?
    public var state: RunState
    public var startedAt: Date
    public var finishedAt: Date?
    /// Its sources (empty once the run is older than `run_history_days`, when only ``summary``
    /// is kept).
    public var sources: [RunSourceInfo]
    /// What became of its sources, kept after they are pruned ("3 sources: 2 succeeded, 1 failed").
    public var summary: String?

    public init(
        id: Int64, trigger: RunTrigger, slot: Date? = nil, requestedBy: String? = nil, state: RunState,
        startedAt: Date, finishedAt: Date? = nil, sources: [RunSourceInfo], summary: String? = nil
    ) {
        self.summary = summary
        self.id = id
        self.trigger = trigger
        self.slot = slot
        self.requestedBy = requestedBy
        self.state = state
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.sources = sources
    }

    /// Tasks of the run (backups and transfers) finished, and in all.
    public var tasksDone: Int {
        sources.reduce(0) { sum, s in
            sum + (s.state == .backingUp || s.backupTask == nil ? 0 : 1)
                + s.copies.filter { $0.state == .verified || $0.state == .failed }.count
        }
    }
    public var tasksTotal: Int {
        sources.reduce(0) { sum, s in sum + (s.backupTask == nil ? 0 : 1) + s.copies.count }
    }
}

/// `POST /v1/runs` (admins): a run now, of every scheduled-or-not source of the site, or of the
/// sources named by `node` and `source`.
public struct StartRunRequest: Codable, Sendable, Equatable {
    public var node: String?
    public var source: String?

    public init(node: String? = nil, source: String? = nil) {
        self.node = node
        self.source = source
    }
}

/// What `GET /v1/runs` lists, as query parameters: `before` (a run id: only older runs) and
/// `limit` (1 to 1000, default 50), newest first.
public struct RunListQuery: Sendable, Equatable {
    public static let defaultLimit = 50
    public var before: Int64?
    public var limit: Int

    public init(before: Int64? = nil, limit: Int = RunListQuery.defaultLimit) {
        self.before = before
        self.limit = limit
    }

    public init(parameter: (String) -> String?) throws {
        before = try ListCursor.before(parameter("before"), what: "a run id")
        limit = try ListLimit.parse(parameter("limit"), default: Self.defaultLimit, max: TaskListQuery.maxLimit)
    }

    public var queryString: String {
        var parts: [String] = []
        if let before { parts.append("before=\(before)") }
        if limit != Self.defaultLimit { parts.append("limit=\(limit)") }
        return parts.joined(separator: "&")
    }
}
