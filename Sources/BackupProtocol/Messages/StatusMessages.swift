import BackupCore
import Foundation

/// `GET /v1/status` (operators): the whole site at a glance. Per source its newest artifact and
/// where it stands on each backup node paired with its node; per node whether it is online, its
/// free space and its tasks. *Verified* and *late* have one definition each (the coordinator's
/// `Standing`), which status, purge, alerts and the dashboard share.
public struct SiteStatus: Codable, Sendable, Equatable {
    public var generatedAt: Date
    public var sources: [SourceStatus]
    public var nodes: [NodeSummary]
    /// The purge switches that are on and what each node's last purge stage found (absent
    /// from older coordinators).
    public var purge: PurgeStanding?

    public init(generatedAt: Date, sources: [SourceStatus], nodes: [NodeSummary], purge: PurgeStanding? = nil) {
        self.generatedAt = generatedAt
        self.sources = sources
        self.nodes = nodes
        self.purge = purge
    }
}

/// Purging at a glance: the pause switches on, and per node its last purge stage.
public struct PurgeStanding: Codable, Sendable, Equatable {
    /// What one node's last purge stage found and did.
    public struct Stage: Codable, Sendable, Equatable {
        public var node: String
        public var at: Date
        /// Copies it ordered deleted (0 when paused or nothing went).
        public var ordered: Int
        public var kept: Int
        public var task: Int64?
        public var paused: String?
        public var holds: [String]
        public var heldBackBy: [String]
        public init(
            node: String, at: Date, ordered: Int, kept: Int, task: Int64?, paused: String?, holds: [String],
            heldBackBy: [String]
        ) {
            self.node = node
            self.at = at
            self.ordered = ordered
            self.kept = kept
            self.task = task
            self.paused = paused
            self.holds = holds
            self.heldBackBy = heldBackBy
        }
    }
    public var pauses: [PurgePause]
    public var stages: [Stage]
    public init(pauses: [PurgePause], stages: [Stage]) {
        self.pauses = pauses
        self.stages = stages
    }
}

public struct SourceStatus: Codable, Sendable, Equatable {
    public var node: String
    public var source: String
    public var kind: String
    /// The newest artifact the catalog holds of it; absent before its first backup.
    public var newest: NewestArtifact?
    /// No new artifact since its last scheduled fire time plus `backup_grace`.
    public var late: Bool
    /// The last slot the scheduler handled, and the next fire time (absent when off).
    public var lastSlot: Date?
    public var nextRun: Date?
    /// The newest artifact's copy on each backup node paired with the source's node.
    public var copies: [CopyStatus]
    /// Why the source's own agent would refuse it (outside its `source_roots`, a pre-backup
    /// step it does not define), from what it reported at register.
    public var refusal: String?
    /// Why all purging of it holds: its newest backup is flagged as a regression and no
    /// `purge release` accepted it.
    public var purgeHold: String?

    public init(
        node: String, source: String, kind: String, newest: NewestArtifact?, late: Bool, lastSlot: Date?,
        nextRun: Date?, copies: [CopyStatus], refusal: String? = nil, purgeHold: String? = nil
    ) {
        self.purgeHold = purgeHold
        self.node = node
        self.source = source
        self.kind = kind
        self.newest = newest
        self.late = late
        self.lastSlot = lastSlot
        self.nextRun = nextRun
        self.copies = copies
        self.refusal = refusal
    }
}

public struct NewestArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var stamp: String
    public var created: Date?
    public var size: Int64
    public var revision: String?
    /// Seconds since it was made.
    public var ageSeconds: Int?

    public init(path: String, stamp: String, created: Date?, size: Int64, revision: String?, ageSeconds: Int?) {
        self.path = path
        self.stamp = stamp
        self.created = created
        self.size = size
        self.revision = revision
        self.ageSeconds = ageSeconds
    }
}

/// One node's copy of a source's newest artifact.
public struct CopyStatus: Codable, Sendable, Equatable {
    public var node: String
    /// Its state in the catalog; absent when the node holds no copy.
    public var state: CopyState?
    public var verifiedAt: Date?
    /// Intact and verified (at arrival or by a verify the coordinator leased) within `max_age`.
    public var verified: Bool
    /// Intact, but last verified longer ago than `max_age` (`verify-overdue`).
    public var verifyOverdue: Bool

    public init(node: String, state: CopyState?, verifiedAt: Date?, verified: Bool, verifyOverdue: Bool) {
        self.node = node
        self.state = state
        self.verifiedAt = verifiedAt
        self.verified = verified
        self.verifyOverdue = verifyOverdue
    }
}

public struct NodeSummary: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var online: Bool
    public var diskFree: Int64?
    public var diskTotal: Int64?
    public var tasksQueued: Int
    public var tasksRunning: Int

    public init(
        name: String, roles: [String], online: Bool, diskFree: Int64?, diskTotal: Int64?, tasksQueued: Int,
        tasksRunning: Int
    ) {
        self.name = name
        self.roles = roles
        self.online = online
        self.diskFree = diskFree
        self.diskTotal = diskTotal
        self.tasksQueued = tasksQueued
        self.tasksRunning = tasksRunning
    }
}

/// `GET /v1/check` (operators): for each pairing and source, the artifacts of the server's
/// newest ones that the backup node lacks intact (the legacy `scm-backup-check`).
public struct CheckEntry: Codable, Sendable, Equatable {
    public var server: String
    public var backup: String
    public var source: String
    /// Artifacts of the source the catalog holds on the server.
    public var artifacts: Int
    /// Of them, the ones the backup node holds intact.
    public var held: Int
    /// Store-relative paths the backup node lacks (or holds damaged), oldest first, at most 100.
    public var missing: [String]
    /// How many it lacks in all.
    public var missingCount: Int

    public init(
        server: String, backup: String, source: String, artifacts: Int, held: Int, missing: [String], missingCount: Int
    ) {
        self.server = server
        self.backup = backup
        self.source = source
        self.artifacts = artifacts
        self.held = held
        self.missing = missing
        self.missingCount = missingCount
    }
}
