import BackupCore
import BackupProtocol
import Foundation

/// The alerts' state machines (pending → firing → resolved), one per rule and subject, stepped
/// by each evaluation's conditions: a value type, tested with a test clock, kept in the catalog
/// so that a restart re-sends nothing.
///
/// - A condition seen for the first time is *pending*; it *fires* at once (every rule's own
///   threshold — `backup_grace`, `agent_silent_after`, … — is its grace), with a notice.
/// - While it lasts it is sent again every `repeat_hours`.
/// - When it is gone, a firing alert *resolves* with a notice (if its firing one was sent).
/// - A silenced one fires without a notice; when its silence ends, the firing notice goes.
/// - Alerts about a node whose agent is silent fold into that agent's notice: sent as lines of
///   it, not on their own.
/// - A notice that could not be delivered stays due and is tried again at the next evaluation.
public struct AlertBook: Sendable, Equatable {
    public struct Track: Codable, Sendable, Equatable {
        public var info: AlertInfo
        /// Whether the firing notice went out (so a resolved notice is owed).
        public var announced: Bool
    }

    public enum NoticeKind: String, Sendable {
        case firing, repeating, resolved
    }

    /// One message for the channels: an alert and, for an agent's silence, the alerts it folds.
    public struct Notice: Sendable, Equatable {
        public var kind: NoticeKind
        public var alert: AlertInfo
        public var folded: [AlertInfo]
    }

    public var tracks: [String: Track] = [:]
    /// How long a resolved alert is kept for `alerts --all`.
    static let keepResolved: TimeInterval = 30 * 86_400

    public init(tracks: [String: Track] = [:]) { self.tracks = tracks }

    static func key(_ rule: AlertRule, _ subject: String) -> String { rule.rawValue + " " + subject }

    /// Steps every machine with `conditions` at `now`; returns the notices due (not yet marked
    /// sent: ``markSent(_:at:)`` does that once a channel took them).
    public mutating func step(
        _ conditions: [AlertRules.Condition], silences: [SilenceInfo], policy: AlertPolicy, now: Date
    ) -> [Notice] {
        var active: [String: AlertRules.Condition] = [:]
        for condition in conditions { active[Self.key(condition.rule, condition.subject)] = condition }
        let silentNodes = Set(conditions.filter { $0.rule == .agentSilent }.compactMap(\.node))
        var notices: [Notice] = []
        var foldedInto: [String: [AlertInfo]] = [:]
        // Conditions new, lasting or gone.
        for (key, condition) in active {
            var track =
                tracks[key].flatMap { $0.info.phase == .resolved ? nil : $0 }
                ?? Track(
                    info: AlertInfo(
                        rule: condition.rule, subject: condition.subject, node: condition.node, phase: .pending,
                        summary: condition.summary, since: now),
                    announced: false)
            track.info.summary = condition.summary
            if track.info.phase == .pending {
                track.info.phase = .firing
                track.info.firedAt = now
            }
            let silence = silences.first {
                $0.covers(rule: condition.rule, subject: condition.subject, node: condition.node, at: now)
            }
            // The silent agent's node this alert folds into, if any.
            let foldsInto =
                condition.rule == .agentSilent ? nil : condition.node.flatMap { silentNodes.contains($0) ? $0 : nil }
            track.info.quiet =
                silence.map { "silenced until \(AlertRules.iso($0.until)) by \($0.by): \($0.reason)" }
                ?? foldsInto.map { "folded into agent-silent of \($0)" }
            if let foldsInto { foldedInto[foldsInto, default: []].append(track.info) }
            if track.info.quiet == nil {
                if !track.announced {
                    notices.append(Notice(kind: .firing, alert: track.info, folded: []))
                } else if let sent = track.info.lastSentAt, now.timeIntervalSince(sent) >= policy.repeatSeconds {
                    notices.append(Notice(kind: .repeating, alert: track.info, folded: []))
                }
            }
            tracks[key] = track
        }
        for (key, track) in tracks where active[key] == nil {
            var ended = track
            if ended.info.phase != .resolved {
                ended.info.phase = .resolved
                ended.info.resolvedAt = now
                ended.info.quiet = nil
            }
            // Owed until a channel took it.
            if ended.announced { notices.append(Notice(kind: .resolved, alert: ended.info, folded: [])) }
            tracks[key] = ended
        }
        for (key, track) in tracks
        where track.info.phase == .resolved && now.timeIntervalSince(track.info.resolvedAt ?? now) > Self.keepResolved {
            tracks[key] = nil
        }
        // An agent's silence carries what it folds.
        for index in notices.indices where notices[index].alert.rule == .agentSilent && notices[index].kind != .resolved
        {
            notices[index].folded = (foldedInto[notices[index].alert.node ?? ""] ?? []).sorted {
                ($0.rule.rawValue, $0.subject) < ($1.rule.rawValue, $1.subject)
            }
        }
        return notices.sorted {
            ($0.alert.rule.rawValue, $0.alert.subject) < ($1.alert.rule.rawValue, $1.alert.subject)
        }
    }

    /// Records that `notice` went out at `now` (or failed with `error`, to be tried again).
    public mutating func markSent(_ notice: Notice, at now: Date, error: String? = nil) {
        let key = Self.key(notice.alert.rule, notice.alert.subject)
        guard var track = tracks[key] else { return }
        track.info.deliveryError = error
        if error == nil {
            track.info.lastSentAt = now
            track.announced = notice.kind != .resolved
        }
        tracks[key] = track
    }

    /// Every alert, newest first; only those not resolved unless `all`.
    public func list(all: Bool) -> [AlertInfo] {
        tracks.values.map(\.info).filter { all || $0.phase != .resolved }.sorted {
            ($0.phase == .resolved ? 1 : 0, $0.rule.rawValue, $0.subject)
                < ($1.phase == .resolved ? 1 : 0, $1.rule.rawValue, $1.subject)
        }
    }
}
