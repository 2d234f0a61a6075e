import BackupCore
import Foundation

/// What a task asks an agent to do. Operators name configured sources and catalogued
/// artifacts, never paths: the coordinator resolves a source through the site configuration
/// and sends its definition with the task, and the agent still refuses a source outside its
/// own `source_roots` and any path outside its store.
public enum TaskKind: String, Codable, Sendable, CaseIterable {
    case backup, verify, inventory, purge, transfer, recover
}

/// A source as the site configuration defines it, sent with each backup task. The tools that
/// read it (paths of `svnadmin`, `trac-admin`, their environment) are the agent's own.
public struct SourceDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var kind: SourceKind
    /// The live source on the node: an absolute path.
    public var path: String
    /// For `trac`: the svn source copied with it under one `svnadmin freeze`.
    public var svnSource: PairedSource?
    /// The name of a pre-backup step the agent defines in its own `agent.toml`
    /// (`[pre_backup.NAME]`); the hub only names it and never sends a command.
    public var preBackup: String?
    /// For `svn`: run `svnadmin verify` on the hotcopy before archiving.
    public var verifySnapshot: Bool?

    public struct PairedSource: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    public init(
        name: String, kind: SourceKind, path: String, svnSource: PairedSource? = nil, preBackup: String? = nil,
        verifySnapshot: Bool? = nil
    ) {
        self.name = name
        self.kind = kind
        self.path = path
        self.svnSource = svnSource
        self.preBackup = preBackup
        self.verifySnapshot = verifySnapshot
    }
}

/// `POST /v1/tasks` (admin): queue a task for one node.
public struct SubmitTaskRequest: Codable, Sendable, Equatable {
    public var kind: TaskKind
    /// The node (agent) that runs it.
    public var node: String
    /// The source, for `backup`; absent for whole-store tasks.
    public var source: String?
    /// For `purge`: the artifacts to delete, as store-relative paths the catalog lists as
    /// copies on `node`.
    public var artifacts: [String]?
    /// For `verify`: only copies not verified for this many days, oldest first ...
    public var olderThanDays: Int?
    /// ... and only as many as this many bytes of reading allow (the I/O budget).
    public var budgetBytes: Int64?

    public init(
        kind: TaskKind, node: String, source: String? = nil, artifacts: [String]? = nil, olderThanDays: Int? = nil,
        budgetBytes: Int64? = nil
    ) {
        self.kind = kind
        self.node = node
        self.source = source
        self.artifacts = artifacts
        self.olderThanDays = olderThanDays
        self.budgetBytes = budgetBytes
    }
}

/// A task as the coordinator lists it and hands it out.
public struct TaskInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var kind: TaskKind
    public var node: String
    public var source: String?
    public var state: TaskState
    public var attempts: Int
    public var fencingToken: UInt64
    public var leaseExpiresAt: Date?
    public var lastError: String?
    /// The registered code of the last failure (``TaskFailure/code``); absent from older
    /// coordinators and for an expiry.
    public var lastErrorCode: BackupError.Code?
    public var createdAt: Date
    /// For `backup`: the source as the site configuration defined it when the task was queued.
    public var definition: SourceDefinition?
    /// For `purge`: the store-relative paths of the artifacts to delete.
    public var artifacts: [String]?
    /// The last progress the holder reported, and the summary of a finished task.
    public var progress: TaskProgress?
    public var detail: String?
    /// For `transfer`: what to copy where; its ticket and peer URL are set when leased.
    public var transfer: TransferOrder?
    /// A queued task that failed before is not handed out again before this moment.
    public var retryAt: Date?
    /// When its last lease began and ended, and the seconds between them at full precision
    /// (its own time: what the agent spent on it, without the waits before).
    public var startedAt: Date?
    public var endedAt: Date?
    public var ownSeconds: Double?
    /// For `purge`, set when leased: the signed order (`scm-backup-purge-order/1`); an agent
    /// deletes nothing without it.
    public var purgeOrder: String?
    /// A purge task's trash order (`scm-backup trash --node`), signed into its purge order.
    public var trash: TrashOrder?
    /// For `verify`, set when leased: the catalog's reference of each copy in its scope (the
    /// named ones, or every copy of the node outside quarantine) whose artifact its origin
    /// confirmed. The agent judges a copy's bytes by it, not by the sidecar beside them.
    public var references: [CopyReference]?
    /// In the answer to a backup's result: the coordinator's signed receipt of each artifact it
    /// recorded from it (``ArtifactReceipt``), which the origin stores as `<artifact>.dna.sig`.
    public var receipts: [String]?
    /// For `recover`: what to read from which copy and restore where on the task's node
    /// (``RecoverOrder``); each piece's ticket and peer URL are set when leased.
    public var recover: RecoverOrder?

    public init(
        id: Int64, kind: TaskKind, node: String, source: String?, state: TaskState, attempts: Int, fencingToken: UInt64,
        leaseExpiresAt: Date?, lastError: String?, lastErrorCode: BackupError.Code? = nil, createdAt: Date,
        retryAt: Date? = nil,
        definition: SourceDefinition? = nil,
        artifacts: [String]? = nil, progress: TaskProgress? = nil, detail: String? = nil,
        transfer: TransferOrder? = nil, startedAt: Date? = nil, endedAt: Date? = nil, ownSeconds: Double? = nil
    ) {
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.ownSeconds = ownSeconds
        self.transfer = transfer
        self.retryAt = retryAt
        self.id = id
        self.kind = kind
        self.node = node
        self.source = source
        self.state = state
        self.attempts = attempts
        self.fencingToken = fencingToken
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
        self.lastErrorCode = lastErrorCode
        self.createdAt = createdAt
        self.definition = definition
        self.artifacts = artifacts
        self.progress = progress
        self.detail = detail
    }
}

/// How far a task has got, as its holder reports with each renewal.
public struct TaskProgress: Codable, Sendable, Equatable {
    /// What it is doing now, e.g. "archiving", "verifying 3 of 12".
    public var step: String
    /// Bytes done and, where known, in all.
    public var bytesDone: Int64?
    public var bytesTotal: Int64?
    /// The rate since the step began, in bytes per second; with the total it gives an ETA.
    public var bytesPerSecond: Double?
    public init(step: String, bytesDone: Int64? = nil, bytesTotal: Int64? = nil, bytesPerSecond: Double? = nil) {
        self.step = step
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.bytesPerSecond = bytesPerSecond
    }

    /// Seconds left at the current rate, when known.
    public var secondsLeft: Double? {
        guard let done = bytesDone, let total = bytesTotal, let rate = bytesPerSecond, rate > 0 else { return nil }
        return Double(max(0, total - done)) / rate
    }
}

/// `POST /v1/tasks/lease` (agent): wait up to `waitSeconds` (at most 30) for the next task.
public struct LeaseRequest: Codable, Sendable, Equatable {
    public var waitSeconds: Int
    /// The agent renews a lease the moment it receives it, before any work: the coordinator
    /// then gives the lease a short confirmation window, and a lease whose confirming renewal
    /// does not come (the agent died with its long poll open) goes back at once without
    /// counting an attempt. Absent (older agents): the full lease, as before.
    public var confirms: Bool?
    public init(waitSeconds: Int, confirms: Bool? = nil) {
        self.waitSeconds = waitSeconds
        self.confirms = confirms
    }
}

/// The answer to a lease request: a task with its lease, or none when the wait ran out.
public struct LeaseResponse: Codable, Sendable, Equatable {
    public var task: TaskInfo?
    public init(task: TaskInfo?) { self.task = task }
}

/// `POST /v1/tasks/{id}/renew` (the holder).
public struct RenewRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    /// Whether the task moved on since the last renewal (bytes, a step).
    public var progressed: Bool
    /// Where it stands; shown by `scm-backup tasks`.
    public var progress: TaskProgress?
    public init(fencingToken: UInt64, progressed: Bool, progress: TaskProgress? = nil) {
        self.fencingToken = fencingToken
        self.progressed = progressed
        self.progress = progress
    }
}

/// Why a task failed: a registered code (``ErrorCodes``), on which the coordinator's retry
/// table decides (see `Protocol/task-lifecycle.md`), and a sentence naming what failed.
public struct TaskFailure: Codable, Sendable, Equatable {
    public var code: BackupError.Code
    public var message: String
    public init(code: BackupError.Code, message: String) {
        self.code = code
        self.message = message
    }
}

/// `POST /v1/tasks/{id}/result` (the holder): success without `error`, failure with it.
public struct ResultRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    /// The failure's message (as agents before typed failures sent it alone).
    public var error: String?
    /// The failure with its code; an agent sends both. A failure without it counts as
    /// `task-failed`.
    public var failure: TaskFailure?
    /// A one-line summary of what was done (artifact made, copies verified).
    public var detail: String?
    /// What the task found or changed in the store, for the catalog: the artifact a backup
    /// made, every copy an inventory or verify saw (with `complete` true: the store holds no
    /// others), the copies a purge deleted.
    public var artifacts: ArtifactReport?
    /// For a folder recovery's preview: the comparison sealed to the admin CLI's one-time key.
    /// The coordinator keeps it in memory only, for that CLI, never in the catalog.
    public var sealed: SealedPreview?
    public init(fencingToken: UInt64, error: String?, detail: String? = nil, artifacts: ArtifactReport? = nil) {
        self.fencingToken = fencingToken
        self.error = error
        self.detail = detail
        self.artifacts = artifacts
    }

    /// A failure report with its code (and the message in `error` for older coordinators).
    public init(fencingToken: UInt64, failure: TaskFailure) {
        self.fencingToken = fencingToken
        self.error = failure.message
        self.failure = failure
    }

    /// The failure as the coordinator judges it: the typed one, else `task-failed` with the
    /// bare message, else none (a success).
    public var reportedFailure: TaskFailure? {
        if let failure { return failure }
        return error.map { TaskFailure(code: .taskFailed, message: $0) }
    }
}

/// `POST /v1/tasks/{id}/handback` (the holder, stopping cleanly): the task returns to the queue
/// without counting an attempt.
public struct HandBackRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    public init(fencingToken: UInt64) { self.fencingToken = fencingToken }
}

/// What the catalog holds of one copy a verify checks: what its bytes must be (size and the
/// origin's digest) and the facts to rewrite its sidecar from when the sidecar is gone or
/// garbled but the bytes match.
public struct CopyReference: Codable, Sendable, Equatable {
    /// Store-relative path of the copy.
    public var path: String
    public var size: Int64
    /// The reference digest (SHA-256; MD5 only for a legacy artifact without one).
    public var sha256: String?
    public var md5: String?
    public var facts: TransferTicket.Facts

    public init(path: String, size: Int64, sha256: String?, md5: String?, facts: TransferTicket.Facts) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.facts = facts
    }
}

/// `POST /v1/tasks/{id}/cancel` (admin, audited): a queued task is cancelled, never a leased one
/// (its agent runs it to its end) nor one that ended.
public struct CancelTaskRequest: Codable, Sendable, Equatable {
    /// Why, for the task's last error and the audit trail.
    public var reason: String?
    public init(reason: String? = nil) { self.reason = reason }
}
