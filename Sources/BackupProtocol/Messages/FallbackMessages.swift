import BackupCore
import Foundation

/// What an agent needs to back up its node on its own while the hub is away (issue 14, item
/// 5): each scheduled source of the node as the site defines it, its schedule, and the last slot
/// the hub handled. It comes with every answer to a register and a heartbeat; the agent keeps the
/// newest on disk (`<store>/.scm-backup-fallback/plan.json`). See `Protocol/task-lifecycle.md`,
/// "Without the hub".
public struct FallbackPlan: Codable, Sendable, Equatable {
    public static let format = "scm-backup-fallback-plan/1"

    public struct Entry: Codable, Sendable, Equatable {
        /// The source (a Trac environment with its `svn_source`, backed up as one pair).
        public var definition: SourceDefinition
        /// The cron expression, its IANA zone and the source's jitter: its fire times are
        /// `next(cron, zone) + jitterSeconds`, the same instants the hub's scheduler uses.
        public var cron: String
        public var zone: String
        public var jitterSeconds: Int
        /// The last slot the hub handled (fired, skipped, missed, or an agent covered); nil
        /// before the hub's scheduler first saw the source.
        public var lastSlot: Date?

        public init(definition: SourceDefinition, cron: String, zone: String, jitterSeconds: Int, lastSlot: Date?) {
            self.definition = definition
            self.cron = cron
            self.zone = zone
            self.jitterSeconds = jitterSeconds
            self.lastSlot = lastSlot
        }

        /// The latest fire time after `after` and at or before `now`, or nil; an entry whose cron
        /// or zone does not parse (a plan file damaged on disk) is named.
        public func latestSlot(after: Date, upTo now: Date) throws -> Date? {
            let expression: CronExpression
            do throws(CronExpression.Invalid) { expression = try CronExpression(cron) } catch {
                throw BackupError(
                    .invalidArgument,
                    "The plan's schedule of source '\(definition.name)' is not a cron expression: \(error.message).")
            }
            guard let timeZone = TimeZone(identifier: zone) else {
                throw BackupError(
                    .invalidArgument,
                    "The plan's time zone '\(zone)' of source '\(definition.name)' is not one this system knows.")
            }
            let shift = TimeInterval(jitterSeconds)
            // A long absence: only the newest slots matter, as for the hub's catch-up.
            var at = max(after, now.addingTimeInterval(-8 * 86_400))
            var latest: Date?
            var steps = 0
            while steps < 20_000, let next = expression.next(after: at.addingTimeInterval(-shift), in: timeZone) {
                let fire = next.addingTimeInterval(shift)
                guard fire <= now else { break }
                if fire > after { latest = fire }
                at = fire
                steps += 1
            }
            return latest
        }
    }

    /// The nightly verify window (`[verify]`): at its start, with the hub away, the agent
    /// verifies its own copies up to `budget` bytes, continuing each night where the last stopped.
    public struct Verify: Codable, Sendable, Equatable {
        /// Minutes after midnight in `zone`.
        public var windowStart: Int
        public var zone: String
        public var budget: Int64
        /// The last window the hub handled for this node.
        public var lastWindow: Date?

        public init(windowStart: Int, zone: String, budget: Int64, lastWindow: Date?) {
            self.windowStart = windowStart
            self.zone = zone
            self.budget = budget
            self.lastWindow = lastWindow
        }

        /// The latest window start after `after` and at or before `now`, or nil; a zone that does
        /// not parse is named.
        public func latestWindow(after: Date, upTo now: Date) throws -> Date? {
            guard let timeZone = TimeZone(identifier: zone) else {
                throw BackupError(
                    .invalidArgument, "The plan's verify time zone '\(zone)' is not one this system knows.")
            }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let midnight = calendar.startOfDay(for: now)
            for day in [0, -1] {
                guard let date = calendar.date(byAdding: .day, value: day, to: midnight),
                    let start = calendar.date(
                        bySettingHour: windowStart / 60 % 24, minute: windowStart % 60, second: 0, of: date)
                else { continue }
                if start <= now { return start > after ? start : nil }
            }
            return nil
        }
    }

    public var format: String
    public var node: String
    public var entries: [Entry]
    public var verify: Verify?

    public init(node: String, entries: [Entry], verify: Verify? = nil) {
        format = Self.format
        self.node = node
        self.entries = entries
        self.verify = verify
    }
}

/// `POST /v1/agents/fallback` (agent): an artifact the agent made on its own for a slot of its
/// own source while the hub was away, reported once it is back (journalled until then). The
/// hub records it as that origin's backup, counts the slot as handled (its catch-up skips it, and
/// a catch-up backup of it still queued is cancelled), and queues its transfers.
public struct FallbackReport: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case backup, verify
    }
    /// `backup` (absent: backup) or `verify`: the nightly verify of its own store, whose
    /// findings the hub records as a verify task's (a mutant it quarantined is repaired).
    public var kind: Kind?
    /// The source backed up; for a verify, `(nightly)`.
    public var source: String
    /// The slot it covers (a fire time of the plan's entry).
    public var slot: Date
    public var madeAt: Date
    public var detail: String
    /// The artifact(s) made, as a backup task's result reports them.
    public var artifacts: ArtifactReport

    public init(
        kind: Kind? = nil, source: String, slot: Date, madeAt: Date, detail: String, artifacts: ArtifactReport
    ) {
        self.kind = kind
        self.source = source
        self.slot = slot
        self.madeAt = madeAt
        self.detail = detail
        self.artifacts = artifacts
    }
}

/// The answer to a ``FallbackReport``: the receipt of each artifact the catalog now holds a
/// reference of (kept as `<artifact>.dna.sig`), the catch-up tasks it cancelled and the
/// transfers it queued.
public struct FallbackAnswer: Codable, Sendable, Equatable {
    public var receipts: [String]?
    public var cancelled: [Int64]?
    public var transfers: [Int64]?
    public init(receipts: [String]? = nil, cancelled: [Int64]? = nil, transfers: [Int64]? = nil) {
        self.receipts = receipts
        self.cancelled = cancelled
        self.transfers = transfers
    }
}
