import Foundation

/// Which artifacts of one source to keep. Ages count from each artifact's creation time, and
/// `keepWithin` is anchored at the newest good artifact, not at now, so a source whose server
/// has been dead for two weeks keeps its history.
///
/// Artifacts flagged as regressions never fill a slot and are always kept: they neither count
/// towards `keepLast` nor push out good history (delete them by hand after review).
public struct RetentionPolicy: Sendable, Equatable, Codable {
    /// Keep the newest N good artifacts.
    public var keepLast: Int
    /// Keep every good artifact created within this many seconds of the newest good one.
    public var keepWithin: TimeInterval?
    /// Keep the newest good artifact of each of the last N days (in ``timeZone``) that have one.
    public var keepDaily: Int
    /// … of each of the last N ISO 8601 weeks (Monday to Sunday, in ``timeZone``) that have one.
    public var keepWeekly: Int
    /// … of each of the last N months that have one.
    public var keepMonthly: Int
    /// The zone whose midnights bound the daily, weekly and monthly buckets: the source's own
    /// (its schedule's `time_zone`), so that a night's backup at 00:30 local time falls in
    /// that local day. UTC by default.
    public var timeZone: TimeZone

    public init(
        keepLast: Int, keepWithin: TimeInterval? = nil, keepDaily: Int = 0, keepWeekly: Int = 0, keepMonthly: Int = 0,
        timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        self.keepLast = keepLast
        self.keepWithin = keepWithin
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.timeZone = timeZone
    }

    /// True when the policy names no slot at all (only the newest good artifact would stay,
    /// by the floor): a configuration like that is refused rather than guessed at.
    public var keepsNothing: Bool {
        keepLast <= 0 && (keepWithin ?? 0) <= 0 && keepDaily <= 0 && keepWeekly <= 0 && keepMonthly <= 0
    }

    /// The calendar of the buckets: ISO 8601 (weeks start on Monday; week 1 holds January's
    /// first Thursday) in ``timeZone``.
    public var calendar: Calendar {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = timeZone
        return calendar
    }

    /// One artifact as retention sees it.
    public struct Candidate: Sendable, Equatable {
        public var id: String
        /// When its origin made it, by the origin's clock: ages and calendar buckets count from it.
        public var created: Date
        public var isRegression: Bool
        /// The source's revision when it is a number that only grows (Subversion's), else nil.
        public var revision: Int?
        /// When the coordinator first recorded it, by its own clock; nil where unknown (a local store).
        public var arrivedAt: Date?
        public init(
            id: String, created: Date, isRegression: Bool = false, revision: Int? = nil, arrivedAt: Date? = nil
        ) {
            self.id = id
            self.created = created
            self.isRegression = isRegression
            self.revision = revision
            self.arrivedAt = arrivedAt
        }
    }

    /// Newest first, not by the origin's clock alone, which may once have run ahead: by revision
    /// when every candidate has a numeric one (a later revision is later content), else by the
    /// coordinator's arrival time when every candidate has one, else by creation time; ties by
    /// creation time, then id.
    public static func newestFirst(_ candidates: [Candidate]) -> [Candidate] {
        let byRevision = !candidates.isEmpty && candidates.allSatisfy { $0.revision != nil }
        let byArrival = !candidates.isEmpty && candidates.allSatisfy { $0.arrivedAt != nil }
        return candidates.sorted { a, b in
            if byRevision, a.revision != b.revision { return a.revision! > b.revision! }
            if !byRevision, byArrival, a.arrivedAt != b.arrivedAt { return a.arrivedAt! > b.arrivedAt! }
            return a.created != b.created ? a.created > b.created : a.id > b.id
        }
    }

    /// The verdict on one artifact: kept (with every reason) or not.
    public struct Decision: Sendable, Equatable {
        public var id: String
        public var keep: Bool
        public var reasons: [String]
    }

    /// Decides for each candidate, newest first (``newestFirst(_:)``). Always keeps at least the
    /// newest good one. Equal times (DNA times have whole seconds) are ordered by id, which for
    /// store artifacts is the path, whose unique stamp folder orders them.
    public func decide(_ candidates: [Candidate]) -> [Decision] {
        let sorted = Self.newestFirst(candidates)
        var reasons: [String: [String]] = [:]
        let good = sorted.filter { !$0.isRegression }
        for c in sorted where c.isRegression { reasons[c.id, default: []].append("regression: kept for review") }
        for (i, c) in good.enumerated() where i < max(keepLast, 1) {
            reasons[c.id, default: []].append(i < keepLast ? "last \(keepLast)" : "newest good")
        }
        if let keepWithin, let newest = good.first {
            for c in good where newest.created.timeIntervalSince(c.created) <= keepWithin {
                reasons[c.id, default: []].append("within \(RetentionPolicy.describe(keepWithin)) of the newest")
            }
        }
        func bucketed(_ count: Int, _ label: String, _ key: (Date) -> String) {
            guard count > 0 else { return }
            var seen: [String] = []
            for c in good {
                let k = key(c.created)
                if seen.contains(k) { continue }
                seen.append(k)
                if seen.count > count { break }
                reasons[c.id, default: []].append("\(label) \(k)")
            }
        }
        let cal = calendar
        bucketed(keepDaily, "daily") { d in
            let c = cal.dateComponents([.year, .month, .day], from: d)
            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        }
        bucketed(keepWeekly, "weekly") { d in
            let c = cal.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d)
            return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!)
        }
        bucketed(keepMonthly, "monthly") { d in
            let c = cal.dateComponents([.year, .month], from: d)
            return String(format: "%04d-%02d", c.year!, c.month!)
        }
        return sorted.map { Decision(id: $0.id, keep: reasons[$0.id] != nil, reasons: reasons[$0.id] ?? []) }
    }

    /// Parses a duration such as `7d`, `12h`, `2w`, `90m`, `30s`.
    public static func parseDuration(_ text: String) throws -> TimeInterval {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let unit = text.last, let factor = units[unit], let value = Double(text.dropLast()), value >= 0 else {
            throw BackupError(
                .invalidArgument, "The duration '\(text)' is not valid: use a number and s, m, h, d or w, e.g. 7d.")
        }
        return value * factor
    }

    public static func describe(_ seconds: TimeInterval) -> String {
        if seconds.truncatingRemainder(dividingBy: 86400) == 0 { return "\(Int(seconds / 86400))d" }
        if seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        return "\(Int(seconds))s"
    }
}
