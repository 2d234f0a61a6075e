import Foundation

/// A five-field cron expression (minute, hour, day of month, month, day of week), as Vixie
/// cron reads it: lists (`1,15`), ranges (`1-5`), steps (`*/10`, `0-30/5`), names of months
/// (`jan`…`dec`) and days (`sun`…`sat`, 7 is Sunday too), case-insensitive. When both the day of
/// month and the day of week are restricted (neither starts with `*`), a day matches if either
/// does; otherwise both must.
///
/// ``next(after:in:)`` evaluates it in an IANA zone on the zone's wall clock: a time that does
/// not exist that day (the spring-forward gap) runs once, at the first minute after the gap; a
/// time that occurs twice (the fall-back hour) runs once, at its first occurrence. Pure code with
/// no clock of its own: the coordinator's scheduler and the agents use the same evaluator.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// Why an expression is refused; the message names the field and the value.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The expression as written.
    public let text: String
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Bit 0 is Sunday.
    let daysOfWeek: UInt64
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { text }

    private struct Field {
        let name: String
        let range: ClosedRange<Int>
        let names: [String]
        /// The first value `names` stand for (1 for months, 0 for days).
        let nameBase: Int
    }

    private static let fields = [
        Field(name: "minute", range: 0...59, names: [], nameBase: 0),
        Field(name: "hour", range: 0...23, names: [], nameBase: 0),
        Field(name: "day of month", range: 1...31, names: [], nameBase: 0),
        Field(
            name: "month", range: 1...12,
            names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], nameBase: 1),
        // 7 is read as Sunday below.
        Field(
            name: "day of week", range: 0...7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], nameBase: 0),
    ]

    /// Parses `text`; an error names the field and the value at fault.
    public init(_ text: String) throws(Invalid) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 else {
            throw Invalid(
                message:
                    "'\(text)' has \(parts.count) fields; a cron expression has five (minute hour day-of-month month day-of-week)"
            )
        }
        var sets: [UInt64] = []
        for (part, field) in zip(parts, Self.fields) {
            sets.append(try Self.parse(part, field, in: text))
        }
        self.text = text
        minutes = sets[0]
        hours = sets[1]
        daysOfMonth = sets[2]
        months = sets[3]
        // 7 is Sunday.
        daysOfWeek = (sets[4] & 0x7F) | (sets[4] >> 7 & 1)
        dayOfMonthRestricted = !parts[2].hasPrefix("*")
        dayOfWeekRestricted = !parts[4].hasPrefix("*")
        guard Self.canMatch(daysOfMonth: daysOfMonth, months: months, dayOfWeekRestricted: dayOfWeekRestricted) else {
            throw Invalid(message: "'\(text)' names no day that exists in its months, so it would never run")
        }
    }

    private static func parse(_ part: String, _ field: Field, in text: String) throws(Invalid) -> UInt64 {
        func fail(_ why: String) -> Invalid {
            Invalid(message: "the \(field.name) field '\(part)' of '\(text)' \(why)")
        }
        func value(_ token: String) throws(Invalid) -> Int {
            if let number = Int(token) {
                guard field.range.contains(number) else {
                    throw fail("has \(number), outside \(field.range.lowerBound)-\(field.range.upperBound)")
                }
                return number
            }
            if let index = field.names.firstIndex(of: token.lowercased()) { return index + field.nameBase }
            throw fail("has '\(token)', which is not a number\(field.names.isEmpty ? "" : " or a name")")
        }
        var set: UInt64 = 0
        for item in part.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw fail("has an empty list item") }
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2 else { throw fail("has more than one step in '\(item)'") }
            var step = 1
            if pieces.count == 2 {
                guard let n = Int(pieces[1]), n > 0 else {
                    throw fail("has the step '\(pieces[1])'; a step is a number above 0")
                }
                step = n
            }
            let span = pieces[0]
            var low: Int
            var high: Int
            if span == "*" {
                (low, high) = (field.range.lowerBound, field.range.upperBound)
            } else if let dash = span.firstIndex(of: "-"), dash != span.startIndex {
                low = try value(String(span[..<dash]))
                high = try value(String(span[span.index(after: dash)...]))
                guard low <= high else { throw fail("has the range '\(span)', which runs backwards") }
            } else {
                low = try value(span)
                // `5/15` means from 5 to the end, every 15.
                high = pieces.count == 2 ? field.range.upperBound : low
            }
            var v = low
            while v <= high {
                set |= 1 << UInt64(v)
                v += step
            }
        }
        return set
    }

    /// Whether some day of the chosen months has a chosen day of month (the day of week can
    /// always match when it is restricted, as either then suffices).
    private static func canMatch(daysOfMonth: UInt64, months: UInt64, dayOfWeekRestricted: Bool) -> Bool {
        if dayOfWeekRestricted { return true }
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains { month in
            months & (1 << UInt64(month)) != 0 && (1...longest[month]).contains { daysOfMonth & (1 << UInt64($0)) != 0 }
        }
    }

    /// Whether the civil day `day` (days since 1970-01-01) matches the day rules.
    func matches(day: Int) -> Bool {
        let (_, month, dayOfMonth) = Civil.date(fromDays: day)
        guard months & (1 << UInt64(month)) != 0 else { return false }
        let weekday = Civil.weekday(ofDays: day)
        let domMatch = daysOfMonth & (1 << UInt64(dayOfMonth)) != 0
        let dowMatch = daysOfWeek & (1 << UInt64(weekday)) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return domMatch || dowMatch }
        return domMatch && dowMatch
    }

    /// The first time strictly after `after` at which the expression fires in `zone`, or nil
    /// when there is none within eight years (an expression like `0 0 29 2 1` still has one).
    public func next(after: Date, in zone: TimeZone) -> Date? {
        let afterSeconds = Int(after.timeIntervalSince1970.rounded(.down))
        // From the day before the local day of `after`: near a transition at midnight an earlier
        // wall day can still map after it.
        let localNow = afterSeconds + zone.secondsFromGMT(for: after)
        let firstDay = Int((Double(localNow) / 86_400).rounded(.down)) - 1
        for day in firstDay..<(firstDay + 8 * 366) where matches(day: day) {
            for hour in 0..<24 where hours & (1 << UInt64(hour)) != 0 {
                // No zone is more than 14 hours from UTC: an hour that ends that long before
                // `after` on the wall cannot map after it.
                if day * 86_400 + hour * 3_600 + 3_599 + Self.widestOffset < afterSeconds { continue }
                for minute in 0..<60 where minutes & (1 << UInt64(minute)) != 0 {
                    let wall = day * 86_400 + hour * 3_600 + minute * 60
                    let instant = Self.instant(ofWall: wall, in: zone)
                    if instant > afterSeconds { return Date(timeIntervalSince1970: TimeInterval(instant)) }
                }
            }
        }
        return nil
    }

    /// The largest distance of any zone's clock from UTC, in seconds.
    static let widestOffset = 14 * 3_600

    /// The instant (seconds since 1970) of the wall time `wall` (the same count on the zone's
    /// clock): its first occurrence when it occurs twice, the end of the gap when it does not
    /// occur at all.
    static func instant(ofWall wall: Int, in zone: TimeZone) -> Int {
        func offset(_ instant: Int) -> Int {
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
        }
        // The offsets in force a day either side cover any transition near this wall time.
        let before = offset(wall - 86_400)
        let after = offset(wall + 86_400)
        let candidates = Set([wall - before, wall - after]).filter { offset($0) == wall - $0 }.sorted()
        if let first = candidates.first { return first }
        // In the gap: the transition lies between the two readings; find it to the second.
        var low = min(wall - before, wall - after)
        var high = max(wall - before, wall - after)
        let lowOffset = offset(low)
        while high - low > 1 {
            let middle = (low + high) / 2
            if offset(middle) == lowOffset { low = middle } else { high = middle }
        }
        return high
    }
}

/// Proleptic Gregorian calendar arithmetic on day counts (days since 1970-01-01), so that the
/// evaluator walks civil days without a calendar object (H. Hinnant's algorithms).
enum Civil {
    static func date(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// 0 for Sunday; 1970-01-01 was a Thursday.
    static func weekday(ofDays days: Int) -> Int { ((days % 7) + 7 + 4) % 7 }
}

/// When a source is backed up: a cron expression in an IANA zone, or never (`"off"`), with a
/// jitter that is the same for the source every time (a hash of its name below the site's
/// `jitter_seconds`), so that sources of one slot do not all start in the same second and
/// `status` can show the exact next time.
public struct SourceSchedule: Sendable, Equatable {
    /// The expression, or nil for `"off"`.
    public let expression: CronExpression?
    public let zone: TimeZone
    /// The zone's name as the site file gave it (Foundation calls UTC "GMT").
    public let zoneName: String
    /// Seconds after each slot at which this source fires.
    public let jitterSeconds: Int

    /// `text` is a cron expression or `"off"`; `zone` an IANA name such as `Asia/Shanghai`.
    public init(_ text: String, zone: String, source: String, jitterLimit: Int = 0) throws(CronExpression.Invalid) {
        guard let timeZone = TimeZone(identifier: zone) else {
            throw CronExpression.Invalid(
                message: "'\(zone)' is not a time zone this system knows; use an IANA name such as Europe/Berlin or UTC"
            )
        }
        guard jitterLimit >= 0 else {
            throw CronExpression.Invalid(message: "a jitter of \(jitterLimit) seconds is below 0")
        }
        expression = text.trimmingCharacters(in: .whitespaces).lowercased() == "off" ? nil : try CronExpression(text)
        self.zone = timeZone
        zoneName = zone
        jitterSeconds = Self.jitter(for: source, limit: jitterLimit)
    }

    /// The next time strictly after `after` at which the source fires (its slot plus its
    /// jitter), or nil when it is off or never fires.
    public func nextFire(after: Date) -> Date? {
        guard let expression else { return nil }
        let shift = TimeInterval(jitterSeconds)
        return expression.next(after: after.addingTimeInterval(-shift), in: zone)?.addingTimeInterval(shift)
    }

    /// A number in `0..<limit` (0 when `limit` is 0) that depends only on `source`: FNV-1a of
    /// its UTF-8 bytes, the same on every node and in every run.
    public static func jitter(for source: String, limit: Int) -> Int {
        guard limit > 0 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in source.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(limit))
    }
}
