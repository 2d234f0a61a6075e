import BackupProtocol
import BackupTesting
import Foundation
import Testing

/// Schedule arithmetic with fixed instants: fields, names, the day-of-month/day-of-week rule,
/// month ends, both daylight-saving changes, and `systemd-analyze calendar` as the outside
/// judge where its rules are cron's.
struct CronExpressionTests {
    static func utc(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: text)!
    }

    static func next(_ expression: String, _ zone: String, after: String, count: Int = 1) throws -> [String] {
        let cron = try CronExpression(expression)
        let timeZone = try #require(TimeZone(identifier: zone))
        var at = utc(after)
        var times: [String] = []
        let formatter = ISO8601DateFormatter()
        for _ in 0..<count {
            at = try #require(cron.next(after: at, in: timeZone), "\(expression) fires again")
            times.append(formatter.string(from: at))
        }
        return times
    }

    @Test func badExpressionsAreRefusedNamingTheFieldAndValue() {
        let cases: [(String, String)] = [
            ("0 2 * *", "has 4 fields"),
            ("60 * * * *", "the minute field '60'"),
            ("0 24 * * *", "outside 0-23"),
            ("0 0 * foo *", "'foo', which is not a number or a name"),
            ("*/0 * * * *", "the step '0'"),
            ("5-1 * * * *", "runs backwards"),
            ("0 0 1,,2 * *", "an empty list item"),
            ("0 0 30 2 *", "would never run"),
            ("0 0 31 apr,jun,sep,nov *", "would never run"),
        ]
        for (text, message) in cases {
            do {
                _ = try CronExpression(text)
                Issue.record("'\(text)' was accepted")
            } catch {
                #expect(error.message.contains(message), "\(text): \(error.message)")
            }
        }
        // Either day field suffices when both are restricted, so a Monday the 31st of April is no obstacle.
        #expect(throws: Never.self) { try CronExpression("0 0 31 4 mon") }
        #expect(throws: CronExpression.Invalid.self) {
            try SourceSchedule("0 2 * * *", zone: "Mars/Olympus", source: "a")
        }
    }

    @Test func fieldsListsRangesStepsAndNames() throws {
        #expect(
            try Self.next("*/20 9-10 * * *", "UTC", after: "2026-12-03T09:30:00Z", count: 4) == [
                "2026-12-03T09:40:00Z", "2026-12-03T10:00:00Z", "2026-12-03T10:20:00Z", "2026-12-03T10:40:00Z",
            ])
        // 2026-12-05 is a Saturday: mon-fri skips to Monday the 7th; 7 is Sunday as 0 is.
        #expect(try Self.next("0 8 * * MON-Fri", "UTC", after: "2026-12-04T09:00:00Z") == ["2026-12-07T08:00:00Z"])
        #expect(try Self.next("0 8 * * 7", "UTC", after: "2026-12-04T09:00:00Z") == ["2026-12-06T08:00:00Z"])
        #expect(try Self.next("15 3 1 jan,jul *", "UTC", after: "2026-02-01T00:00:00Z") == ["2026-07-01T03:15:00Z"])
        #expect(
            try Self.next("0 0 1-31/10 * *", "UTC", after: "2026-12-01T00:00:00Z", count: 3) == [
                "2026-12-11T00:00:00Z", "2026-12-21T00:00:00Z", "2026-12-31T00:00:00Z",
            ])
    }

    @Test func dayOfMonthOrDayOfWeekWhenBothAreRestrictedAsVixieCron() throws {
        // The 13th or any Friday: Fri 6th, Fri 13th, Fri 20th; not only Friday the 13th.
        #expect(
            try Self.next("0 0 13 * fri", "UTC", after: "2026-11-01T00:00:00Z", count: 3) == [
                "2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z",
            ])
        // A day of week that starts with a star (even a stepped one) is not "restricted", so both
        // must match, as in Vixie cron: the next 13th on a Sunday, Tuesday, Thursday or Saturday.
        #expect(try Self.next("0 0 13 * */2", "UTC", after: "2026-11-01T00:00:00Z") == ["2026-12-13T00:00:00Z"])
        #expect(
            try Self.next("0 0 * * fri", "UTC", after: "2026-11-01T00:00:00Z", count: 2) == [
                "2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z",
            ])
    }

    @Test func monthEndsAndLeapDays() throws {
        #expect(
            try Self.next("0 0 31 * *", "UTC", after: "2026-04-01T00:00:00Z", count: 2) == [
                "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
            ])
        #expect(try Self.next("0 12 29 2 *", "UTC", after: "2026-03-01T00:00:00Z") == ["2028-02-29T12:00:00Z"])
    }

    @Test func theLegacySitesHoursInShanghai() throws {
        // 09:00 and 15:00 in Asia/Shanghai (UTC+8, no daylight saving) are 01:00 and 07:00 UTC.
        #expect(
            try Self.next("0 9,15 * * *", "Asia/Shanghai", after: "2026-12-03T00:00:00Z", count: 3) == [
                "2026-12-03T01:00:00Z", "2026-12-03T07:00:00Z", "2026-12-04T01:00:00Z",
            ])
    }

    @Test func aTimeInTheSpringGapRunsOnceAtTheFirstMinuteAfterIt() throws {
        // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist.
        #expect(
            try Self.next("30 2 * * *", "Europe/Berlin", after: "2026-03-28T12:00:00Z", count: 2) == [
                "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z",
            ])
        // Every minute of the missing hour: one run at 03:00 CEST, then the next day's 02:00.
        #expect(
            try Self.next("* 2 * * *", "Europe/Berlin", after: "2026-03-28T12:00:00Z", count: 2) == [
                "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z",
            ])
        // America/New_York, 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        #expect(
            try Self.next("15 2 * * *", "America/New_York", after: "2026-03-08T00:00:00Z") == ["2026-03-08T07:00:00Z"])
    }

    @Test func aTimeTheAutumnChangeRepeatsRunsOnceAtItsFirstOccurrence() throws {
        // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:30 comes at 00:30 and at
        // 01:30 UTC; it runs at 00:30 only, then at 02:30 CET (01:30 UTC) the next day.
        #expect(
            try Self.next("30 2 * * *", "Europe/Berlin", after: "2026-10-24T12:00:00Z", count: 2) == [
                "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z",
            ])
        // Restarted during the repeated hour, after the first 02:30: not again that night.
        #expect(try Self.next("30 2 * * *", "Europe/Berlin", after: "2026-10-25T01:00:00Z") == ["2026-10-26T01:30:00Z"])
    }

    @Test func jitterIsTheSameForASourceEveryTimeAndWithinItsLimit() throws {
        let a = try SourceSchedule("0 2 * * *", zone: "UTC", source: "repo", jitterLimit: 600)
        let again = try SourceSchedule("0 2 * * *", zone: "UTC", source: "repo", jitterLimit: 600)
        #expect(a.jitterSeconds == again.jitterSeconds && (0..<600).contains(a.jitterSeconds))
        let spread = Set((0..<20).map { SourceSchedule.jitter(for: "source-\($0)", limit: 600) })
        #expect(spread.count > 10, "sources of one slot are spread")
        let fire = try #require(a.nextFire(after: Self.utc("2026-12-03T10:00:00Z")))
        #expect(fire == Self.utc("2026-12-04T02:00:00Z").addingTimeInterval(TimeInterval(a.jitterSeconds)))
        // Just before its own jittered time, the same night's slot is still ahead.
        #expect(a.nextFire(after: fire.addingTimeInterval(-1)) == fire)
        #expect(try SourceSchedule("off", zone: "UTC", source: "repo").nextFire(after: Date()) == nil)
    }

    /// Cron and systemd agree away from daylight-saving gaps, where only one day field is
    /// restricted: the next 30 times of each, from the same base time.
    @Test(arguments: [
        ("0 9,15 * * *", "*-*-* 09,15:00:00", "Asia/Shanghai"),
        ("*/15 8-10 * * mon-fri", "Mon..Fri *-*-* 08..10:00/15:00", "America/New_York"),
        ("30 2 1 * *", "*-*-01 02:30:00", "Europe/Berlin"),
        ("0 0 31 * *", "*-*-31 00:00:00", "UTC"),
        ("5 4 * jan,jun *", "*-01,06-* 04:05:00", "Australia/Sydney"),
    ])
    func systemdAnalyzeAgrees(cron: String, calendar: String, zone: String) throws {
        let base = "2026-05-02T00:00:00Z"
        let oracle = try Command.run(
            "systemd-analyze",
            ["calendar", "--iterations=30", "--base-time=2026-05-02 00:00:00 UTC", "\(calendar) \(zone)"],
            environment: ["TZ": "UTC"])
        #expect(oracle.status == 0, "\(oracle.stderr)")
        let theirs = oracle.stdout.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("Next elapse:") || line.contains("Iter. #") else { return nil }
            // "    Next elapse: Mon 2026-03-30 00:30:00 UTC"
            let parts = line.split(separator: " ")
            guard parts.count >= 4 else { return nil }
            return "\(parts[parts.count - 3])T\(parts[parts.count - 2])Z"
        }
        #expect(theirs.count == 30, "\(oracle.stdout)")
        #expect(try Self.next(cron, zone, after: base, count: 30) == theirs)
    }
}
