import BackupCore
import Foundation

/// The rules the alert service watches (`Protocol/alerts.md`). The raw value is the name the
/// CLI, the API and silences use.
public enum AlertRule: String, Codable, Sendable, CaseIterable {
    /// A source is late: no artifact newer than its last scheduled slot `[schedule]
    /// backup_grace` after it.
    case backupMissing = "backup-missing"
    /// The newest artifact of a source has fewer intact copies on backup nodes than it wants.
    case notOffBox = "not-off-box"
    /// A copy not verified within `[verify] max_age`.
    case verifyOverdue = "verify-overdue"
    /// A copy failed verification (mutant, quarantined, mismatch).
    case mutant
    /// A node's store disk has less free than `disk_free_min`.
    case diskLow = "disk-low"
    /// A node's store disk fills, at the pace of the last week, within `disk_full_within`.
    case diskFilling = "disk-filling"
    /// An agent has not been heard from for `agent_silent_after`.
    case agentSilent = "agent-silent"
    /// A source's newest backup is flagged a regression and holds its purging.
    case regressionHeld = "regression-held"
    /// Purging is paused (site-wide or on a node) for longer than `purge_paused_after`.
    case purgePaused = "purge-paused"
    /// A certificate (the hub's, the CA's, an agent's) expires within `certificate_warn_days`.
    case certificateExpiring = "certificate-expiring"
    /// Tasks of one node, kind and source failed `task_failures` times within a day.
    case taskFailing = "task-failing"
    /// A node's store is refused for its marker (unmounted, another disk, swapped).
    case storeMarker = "store-marker"
    /// A scheduled slot did not start its run (it could not be started, or the hub missed it).
    case runNotStarted = "run-not-started"
    /// A channel of the alerts themselves fails (the dead-man heartbeat, a notice's delivery).
    case channelFailing = "channel-failing"
}

/// One alert as `GET /v1/alerts` and `scm-backup alerts` show it.
public struct AlertInfo: Codable, Sendable, Equatable {
    public enum Phase: String, Codable, Sendable {
        case pending, firing, resolved
    }

    public var rule: AlertRule
    /// What it is about: `node/source`, `node`, `node/path` or `site`.
    public var subject: String
    /// The node it concerns, when one does (for folding into an agent's silence).
    public var node: String?
    public var phase: Phase
    public var summary: String
    /// When the condition was first seen, when it started firing, when a notice was last sent,
    /// and when it resolved.
    public var since: Date
    public var firedAt: Date?
    public var lastSentAt: Date?
    public var resolvedAt: Date?
    /// Why it is not notified now: `silenced until …`, `folded into agent-silent of NODE`.
    public var quiet: String?
    /// The last channel failure of its notice, when one failed.
    public var deliveryError: String?

    public init(
        rule: AlertRule, subject: String, node: String?, phase: Phase, summary: String, since: Date,
        firedAt: Date? = nil, lastSentAt: Date? = nil, resolvedAt: Date? = nil, quiet: String? = nil,
        deliveryError: String? = nil
    ) {
        self.rule = rule
        self.subject = subject
        self.node = node
        self.phase = phase
        self.summary = summary
        self.since = since
        self.firedAt = firedAt
        self.lastSentAt = lastSentAt
        self.resolvedAt = resolvedAt
        self.quiet = quiet
        self.deliveryError = deliveryError
    }
}

/// `POST /v1/alerts/silence` (admin, audited): no notice of `rule` (for `source` and/or `node`
/// when given) until `seconds` from now.
public struct SilenceRequest: Codable, Sendable, Equatable {
    public var rule: AlertRule
    public var source: String?
    public var node: String?
    public var seconds: Int
    public var reason: String

    public init(rule: AlertRule, source: String? = nil, node: String? = nil, seconds: Int, reason: String) {
        self.rule = rule
        self.source = source
        self.node = node
        self.seconds = seconds
        self.reason = reason
    }
}

/// A silence as it is kept and listed.
public struct SilenceInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var rule: AlertRule
    public var source: String?
    public var node: String?
    public var until: Date
    public var reason: String
    public var by: String

    public init(id: Int64, rule: AlertRule, source: String?, node: String?, until: Date, reason: String, by: String) {
        self.id = id
        self.rule = rule
        self.source = source
        self.node = node
        self.until = until
        self.reason = reason
        self.by = by
    }

    /// Whether it covers an alert of `rule` about `subject` (`node/source`, `node`, …) of `node`.
    public func covers(rule: AlertRule, subject: String, node: String?, at now: Date) -> Bool {
        guard self.rule == rule, now < until else { return false }
        if let wanted = self.node, wanted != node { return false }
        if let source, !subject.hasSuffix("/" + source) { return false }
        return true
    }
}
