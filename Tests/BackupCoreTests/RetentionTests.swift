import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// Retention decisions as tables of dates.
struct RetentionTests {
    /// 2026-11-27 09:00 UTC minus `days` days (and `hours` hours).
    static func date(_ days: Double, hours: Double = 0) -> Date {
        Date(timeIntervalSince1970: 1_795_770_000 - days * 86400 - hours * 3600)
    }

    static func candidates(_ ages: [Double], regressions: Set<Int> = []) -> [RetentionPolicy.Candidate] {
        ages.enumerated().map {
            RetentionPolicy.Candidate(
                id: "a\($0.offset)", created: date($0.element), isRegression: regressions.contains($0.offset))
        }
    }

    static func kept(_ policy: RetentionPolicy, _ candidates: [RetentionPolicy.Candidate]) -> [String] {
        policy.decide(candidates).filter(\.keep).map(\.id).sorted()
    }

    @Test(arguments: [
        // (ages in days, keep-last, expected kept ids)
        ([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 7, ["a0", "a1", "a2", "a3", "a4", "a5", "a6"]),
        ([0.0, 1, 2], 7, ["a0", "a1", "a2"]),
        ([5.0, 0, 3], 1, ["a1"]),
        ([0.0, 1, 2], 0, ["a0"]),  // The newest good one is always kept.
    ])
    func keepLast(ages: [Double], n: Int, expected: [String]) {
        #expect(Self.kept(RetentionPolicy(keepLast: n), Self.candidates(ages)) == expected)
    }

    @Test func keepWithinIsAnchoredAtTheNewestGoodArtifactNotAtNow() {
        // A server dead for two weeks: its artifacts are 14 to 30 days old.
        let ages: [Double] = [14, 15, 16, 20, 22, 30]
        let policy = RetentionPolicy(keepLast: 1, keepWithin: 7 * 86400)
        #expect(Self.kept(policy, Self.candidates(ages)) == ["a0", "a1", "a2", "a3"])
    }

    @Test func anOriginClockThatRanAheadDoesNotMakeAnOlderArtifactTheNewest() {
        // Revision 11 was made while the server's clock ran 3 h ahead: it looks newer than 12.
        let t = Date(timeIntervalSince1970: 1_764_554_400)
        let skewed = [
            RetentionPolicy.Candidate(id: "r10", created: t, revision: 10),
            RetentionPolicy.Candidate(id: "r11", created: t + 86400 + 3 * 3600, revision: 11),
            RetentionPolicy.Candidate(id: "r12", created: t + 86400 + 3600, revision: 12),
        ]
        #expect(Self.kept(RetentionPolicy(keepLast: 1), skewed) == ["r12"])
        // Without numeric revisions (git, folders) the coordinator's arrival time orders them.
        let arrived = skewed.map { c in
            RetentionPolicy.Candidate(
                id: c.id, created: c.created, arrivedAt: t + Double(c.revision!) * 60)
        }
        #expect(Self.kept(RetentionPolicy(keepLast: 1), arrived) == ["r12"])
        // With neither, only the origin's clock is left.
        let bare = skewed.map { RetentionPolicy.Candidate(id: $0.id, created: $0.created) }
        #expect(Self.kept(RetentionPolicy(keepLast: 1), bare) == ["r11"])
    }

    @Test func regressionsNeverFillASlotAndAreAlwaysKept() {
        // The three newest are a broken repository's backups (revision went backwards).
        let ages: [Double] = [0, 1, 2, 3, 4, 5]
        let policy = RetentionPolicy(keepLast: 2)
        let decisions = policy.decide(Self.candidates(ages, regressions: [0, 1, 2]))
        #expect(decisions.filter(\.keep).map(\.id).sorted() == ["a0", "a1", "a2", "a3", "a4"])
        #expect(decisions.first { $0.id == "a0" }?.reasons == ["regression: kept for review"])
        #expect(decisions.first { $0.id == "a5" }?.keep == false)
    }

    @Test func dailyWeeklyAndMonthlyKeepTheNewestOfEachPeriod() {
        // Two backups a day for 70 days.
        var ages: [Double] = []
        for day in 0..<70 { ages += [Double(day), Double(day) + 0.3] }
        let candidates = Self.candidates(ages)
        let daily = Self.kept(RetentionPolicy(keepLast: 1, keepDaily: 3), candidates)
        #expect(daily == ["a0", "a2", "a4"])
        let weekly = RetentionPolicy(keepLast: 1, keepWeekly: 4).decide(candidates).filter(\.keep)
        #expect(weekly.count == 4)
        let weeks = Set(weekly.flatMap(\.reasons).filter { $0.hasPrefix("weekly") })
        #expect(weeks.count == 4)
        let monthly = RetentionPolicy(keepLast: 1, keepMonthly: 12).decide(candidates).filter(\.keep)
        // 2026-11-27 back 70 days reaches 2026-09-18: months 11, 10, 9.
        #expect(
            Set(monthly.flatMap(\.reasons).filter { $0.hasPrefix("monthly") }) == [
                "monthly 2026-11", "monthly 2026-10", "monthly 2026-09",
            ])
    }

    @Test(arguments: [("7d", 604_800.0), ("12h", 43_200), ("2w", 1_209_600), ("90m", 5400), ("30s", 30)])
    func durationsParse(_ text: String, _ seconds: Double) throws {
        #expect(try RetentionPolicy.parseDuration(text) == seconds)
    }

    @Test(arguments: ["7", "d", "-1d", "7y", ""])
    func badDurationsAreRefusedNamingTheValue(_ text: String) {
        let error = #expect(throws: BackupError.self) { try RetentionPolicy.parseDuration(text) }
        #expect(error?.message.contains("'\(text)'") == true)
    }
}

/// Purge on a real store: dry run by default, the newest verified artifact survives any policy.
struct PurgeTests {
    private func store(with days: [Double], in dir: TemporaryDirectory) throws -> (Store, [PublishedArtifact]) {
        try FixtureTree.make(at: dir.file("src"))
        let store = try Store.openForWriting(dir.file("store"))
        let published = try days.map {
            try store.backupFolder(dir.file("src"), node: "n", name: "conf", now: RetentionTests.date($0))
        }
        return (store, published)
    }

    @Test func aDryRunDeletesNothingAndApplyDeletesWhatItShowed() throws {
        try withTemporaryDirectory("purge") { dir in
            let (store, published) = try store(with: [40, 30, 20, 10, 0], in: dir)
            let plan = try store.purge(RetentionPolicy(keepLast: 2), apply: false)
            #expect(plan.filter { !$0.keep }.map(\.artifact.path).sorted() == published[0..<3].map(\.path).sorted())
            #expect(try store.scan().artifacts.count == 5)
            _ = try store.purge(RetentionPolicy(keepLast: 2), apply: true)
            #expect(try store.scan().artifacts.map(\.path) == published[3...].map(\.path))
            // Emptied date folders are gone; last still points at the newest.
            let fm = FileManager.default
            #expect(!fm.fileExists(atPath: (published[0].path as NSString).deletingLastPathComponent))
            #expect(
                try fm.destinationOfSymbolicLink(atPath: dir.file("store/n/folder/conf/last"))
                    == published[4].location.stamp)
        }
    }

    @Test func theNewestVerifiedArtifactSurvivesWhenTheNewestIsAMutant() throws {
        try withTemporaryDirectory("purge-mutant") { dir in
            let (store, published) = try store(with: [3, 2, 1, 0], in: dir)
            try flipByte(published[3].path, at: 100)
            let items = try store.purge(RetentionPolicy(keepLast: 1), apply: true)
            let kept = items.filter(\.keep).map(\.artifact.path).sorted()
            #expect(kept == [published[2].path, published[3].path].sorted())
            #expect(items.first { $0.artifact.path == published[2].path }?.reasons.contains("newest verified") == true)
        }
    }

    @Test func aBackupThatRegressedIsFlaggedAndDoesNotPushOutGoodHistory() throws {
        try withTemporaryDirectory("purge-regression") { dir in
            var rng = SeededGenerator(seed: 9)
            try FileManager.default.createDirectory(atPath: dir.file("src"), withIntermediateDirectories: true)
            try Data(rng.bytes(200_000)).write(
                to: URL(fileURLWithPath: dir.file("src/data.bin")))
            let store = try Store.openForWriting(dir.file("store"))
            var good: [PublishedArtifact] = []
            for day in [3.0, 2] {
                good.append(
                    try store.backupFolder(dir.file("src"), node: "n", name: "conf", now: RetentionTests.date(day)))
            }
            // The folder loses most of its content: the next backups are flagged.
            try Data("tiny".utf8).write(to: URL(fileURLWithPath: dir.file("src/data.bin")))
            let collapsed = try store.backupFolder(
                dir.file("src"), node: "n", name: "conf", now: RetentionTests.date(1))
            #expect(collapsed.dna.regressions?.first?.hasPrefix("size collapsed from") == true)
            #expect(collapsed.warnings.contains { $0.contains("regression") })
            let items = try store.purge(RetentionPolicy(keepLast: 1), apply: true)
            #expect(items.filter(\.keep).map(\.artifact.path).sorted() == [good[1].path, collapsed.path].sorted())
            // Recover picks the newest good artifact, not the flagged one.
            #expect(try store.findArtifact(name: "conf").path == good[1].path)
        }
    }
}
