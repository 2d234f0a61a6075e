import Foundation

/// What the purge stage would order on one node now, and why each copy is kept
/// (`GET /v1/purge/plan?node=NAME`; `POST /v1/purge/apply` answers it with the task it queued).
/// See `Protocol/purge.md`.
public struct PurgePlan: Codable, Sendable, Equatable {
    /// One copy on the node.
    public struct Entry: Codable, Sendable, Equatable {
        public var path: String
        public var origin: String
        public var source: String
        /// True when the stage orders its deletion (unless purging is paused).
        public var delete: Bool
        /// Why it is kept (every reason), or why it goes.
        public var reasons: [String]
        /// The node holds it though it is not paired with its origin: it never counts toward
        /// `copies`, and it is purged by the node's policy.
        public var orphan: Bool?

        public init(path: String, origin: String, source: String, delete: Bool, reasons: [String], orphan: Bool? = nil)
        {
            self.path = path
            self.origin = origin
            self.source = source
            self.delete = delete
            self.reasons = reasons
            self.orphan = orphan
        }
    }

    public var node: String
    /// When the plan was made, by the hub's clock.
    public var at: Date
    /// Why nothing is ordered now (a pause switch); nil when the deletions go ahead.
    public var paused: String?
    /// Sources whose purging holds whole, each with why (`origin/source: …`).
    public var holds: [String]
    /// Backup nodes that hold purging back (too few fresh verified copies there), each with
    /// what it lacks.
    public var heldBackBy: [String]
    public var copies: [Entry]
    /// The node's quarantined mutants (`path` under `.quarantine/`), and whether the stage
    /// removes each (absent when it holds none).
    public var quarantine: [Entry]?
    /// The purge task queued for it (`apply`), when one was: the first, when the deletions
    /// took several orders (``tasks``).
    public var task: Int64?
    /// Every purge task queued, when more than one (an order names at most 250 copies).
    public var tasks: [Int64]?

    public init(
        node: String, at: Date, paused: String? = nil, holds: [String] = [], heldBackBy: [String] = [],
        copies: [Entry] = [], task: Int64? = nil
    ) {
        self.node = node
        self.at = at
        self.paused = paused
        self.holds = holds
        self.heldBackBy = heldBackBy
        self.copies = copies
        self.task = task
    }

    /// The copies the stage orders deleted.
    public var deletions: [Entry] { copies.filter(\.delete) }
}

/// `POST /v1/purge/pause` and `/v1/purge/resume` (admin): the site-wide switch when `node` is
/// nil, else that node's.
public struct PurgeSwitchRequest: Codable, Sendable, Equatable {
    public var node: String?
    /// Why (shown in `status`); optional.
    public var reason: String?
    public init(node: String? = nil, reason: String? = nil) {
        self.node = node
        self.reason = reason
    }
}

/// A pause switch that is on.
public struct PurgePause: Codable, Sendable, Equatable {
    /// The node it stops, or nil for the whole site.
    public var node: String?
    public var by: String
    public var at: Date
    public var reason: String?
    public init(node: String?, by: String, at: Date, reason: String?) {
        self.node = node
        self.by = by
        self.at = at
        self.reason = reason
    }
}

/// What an admin asks of a node's trash: list it (neither field), put copies back, or free
/// what was deleted at least `emptyOlderThanSeconds` ago. It travels in the task and in the
/// signed purge order, so a node does it only on the purge key's word.
public struct TrashOrder: Codable, Sendable, Equatable {
    /// Store-relative paths to put back where they were.
    public var restore: [String]?
    /// Free the trash's batches deleted at least this long ago (0: all).
    public var emptyOlderThanSeconds: Double?
    /// Quarantined mutants (`.quarantine/…`) to remove, the purge stage's decision once their
    /// repair was verified `quarantine_days` ago; the agent keeps any whose artifact is not
    /// here intact again.
    public var removeQuarantined: [String]?
    public init(restore: [String]? = nil, emptyOlderThanSeconds: Double? = nil, removeQuarantined: [String]? = nil) {
        self.removeQuarantined = removeQuarantined
        self.restore = restore
        self.emptyOlderThanSeconds = emptyOlderThanSeconds
    }
}

/// `POST /v1/trash` (admin, audited): a ``TrashOrder`` for `node`, queued as a purge task that
/// names no copy; answers the task.
public struct TrashRequest: Codable, Sendable, Equatable {
    public var node: String
    public var order: TrashOrder
    public init(node: String, order: TrashOrder) {
        self.node = node
        self.order = order
    }
}

/// `POST /v1/purge/apply` (admin): run the purge stage on `node` now.
public struct PurgeApplyRequest: Codable, Sendable, Equatable {
    public var node: String
    public init(node: String) { self.node = node }
}

/// `POST /v1/purge/release` (admin): accept the flagged newest backup of `origin`'s `source`
/// as its new baseline, so that its purging goes on.
public struct PurgeReleaseRequest: Codable, Sendable, Equatable {
    public var origin: String
    public var source: String
    public init(origin: String, source: String) {
        self.origin = origin
        self.source = source
    }
}

/// The answer to a release: the artifact accepted.
public struct PurgeReleaseResponse: Codable, Sendable, Equatable {
    public var origin: String
    public var source: String
    public var path: String
    public var regressions: [String]
    public init(origin: String, source: String, path: String, regressions: [String]) {
        self.origin = origin
        self.source = source
        self.path = path
        self.regressions = regressions
    }
}
