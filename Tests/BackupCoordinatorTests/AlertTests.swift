import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Logging
import Testing

/// The alert rules as tables of site states and clocks, and the alerts' state machines: fire
/// once, repeat, resolve, silences, folding into a silent agent, a failed delivery tried again,
/// and a restart (the book through JSON) that re-sends nothing (issue 15, item 3).
struct AlertTests {
    static let t0 = Date(timeIntervalSince1970: 1_796_000_000)

    static var site: SiteConfiguration {
        var site = SiteConfiguration(
            nodes: [
                .init(
                    name: "srv1", roles: [.server], addresses: ["127.0.0.1"],
                    sources: ["env": SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env")]),
                .init(name: "vault", roles: [.backup]),
            ], pairings: [.init(server: "srv1", backup: "vault")])
        site.alerts.agentSilentAfter = 600
        return site
    }

    static func node(_ name: String, heard: Date?, free: Int64 = 500, total: Int64 = 1000) -> NodeStatus {
        NodeStatus(
            name: name, role: "agent", version: "0.3.0", storePath: "/s", diskTotal: total, diskFree: free, kinds: [],
            registeredAt: heard, lastHeartbeatAt: heard, online: heard != nil)
    }

    static func status(
        late: Bool = false, made: Date? = t0, vault: CopyState? = .intact, verifyOverdue: Bool = false,
        hold: String? = nil, pauses: [PurgePause] = []
    ) -> SiteStatus {
        SiteStatus(
            generatedAt: t0,
            sources: [
                SourceStatus(
                    node: "srv1", source: "env", kind: "svn",
                    newest: made.map {
                        NewestArtifact(
                            path: "srv1/svn/env/2026/12/01/030000/env-7.tar.gz", stamp: "2026/12/01/030000",
                            created: $0, size: 100, revision: "7", ageSeconds: 0)
                    }, late: late, lastSlot: t0, nextRun: nil,
                    copies: [
                        CopyStatus(
                            node: "vault", state: vault, verifiedAt: nil, verified: false, verifyOverdue: verifyOverdue)
                    ], purgeHold: hold)
            ], nodes: [], purge: PurgeStanding(pauses: pauses, stages: []))
    }

    static func rules(
        _ status: SiteStatus, nodes: [NodeStatus]? = nil, failed: [AlertRules.FailedCopy] = [], at now: Date
    )
        -> [String]
    {
        AlertRules.evaluate(
            status: status, nodes: nodes ?? [node("srv1", heard: now), node("vault", heard: now)], failed: failed,
            site: site, now: now
        ).map { "\($0.rule.rawValue) \($0.subject)" }.sorted()
    }

    @Test func eachRuleFiresOnItsStateAndNotBefore() {
        let now = Self.t0.addingTimeInterval(3 * 3600)
        #expect(Self.rules(Self.status(), at: now).isEmpty, "a healthy site raises nothing")
        #expect(Self.rules(Self.status(late: true), at: now) == ["backup-missing srv1/env"])
        // Off its box: only once the newest is older than not_off_box_after (2 h).
        #expect(Self.rules(Self.status(vault: nil), at: Self.t0.addingTimeInterval(3600)).isEmpty)
        #expect(Self.rules(Self.status(vault: nil), at: now) == ["not-off-box srv1/env"])
        #expect(Self.rules(Self.status(vault: .unverified), at: now) == ["not-off-box srv1/env"])
        #expect(Self.rules(Self.status(verifyOverdue: true), at: now) == ["verify-overdue vault:srv1/env"])
        #expect(Self.rules(Self.status(hold: "flagged"), at: now) == ["regression-held srv1/env"])
        let failed = [
            AlertRules.FailedCopy(node: "vault", path: "srv1/svn/env/x.tar.gz", state: .quarantined, problem: "sha256")
        ]
        #expect(Self.rules(Self.status(), failed: failed, at: now) == ["mutant vault:srv1/svn/env/x.tar.gz"])
        let full = [Self.node("srv1", heard: now), Self.node("vault", heard: now, free: 50)]
        #expect(Self.rules(Self.status(), nodes: full, at: now) == ["disk-low vault"])
        // Silent: heard 11 minutes ago, or never.
        let silent = [Self.node("srv1", heard: now.addingTimeInterval(-660)), Self.node("vault", heard: nil)]
        #expect(Self.rules(Self.status(), nodes: silent, at: now) == ["agent-silent srv1", "agent-silent vault"])
        // Purging paused: after a day.
        let pause = PurgePause(node: nil, by: "root", at: now.addingTimeInterval(-3600), reason: "checking")
        #expect(Self.rules(Self.status(pauses: [pause]), at: now).isEmpty)
        #expect(
            Self.rules(Self.status(pauses: [pause]), at: now.addingTimeInterval(86_400)).contains("purge-paused site"))
    }

    static func failedTask(_ id: Int64, node: String = "srv1", code: BackupError.Code, at: Date) -> TaskInfo {
        var task = TaskInfo(
            id: id, kind: .backup, node: node, source: "env", state: .failed, attempts: 1, fencingToken: UInt64(id),
            leaseExpiresAt: nil, lastError: "\(code.rawValue) happened", lastErrorCode: code, createdAt: at)
        task.endedAt = at
        return task
    }

    @Test func certificatesFailingTasksAStoreMarkerAndAMissedRunFire() throws {
        let now = Self.t0
        func rules(_ history: AlertRules.History) -> [String] {
            AlertRules.evaluate(
                status: Self.status(), nodes: [Self.node("srv1", heard: now), Self.node("vault", heard: now)],
                failed: [], site: Self.site, now: now, history: history
            ).map { "\($0.rule.rawValue) \($0.subject)" }
        }
        let soon = AlertRules.Certificate(
            name: "agent srv1", node: "srv1", notAfter: now.addingTimeInterval(29 * 86_400))
        let later = AlertRules.Certificate(name: "the hub", node: nil, notAfter: now.addingTimeInterval(31 * 86_400))
        #expect(rules(.init(certificates: [soon, later])) == ["certificate-expiring agent srv1"])
        // Three failures within a day fire; two, or older ones, do not.
        let two = [1, 2].map { Self.failedTask($0, code: .toolFailed, at: now.addingTimeInterval(-3600)) }
        #expect(rules(.init(failedTasks: two)).isEmpty)
        let old = Self.failedTask(3, code: .toolFailed, at: now.addingTimeInterval(-2 * 86_400))
        #expect(rules(.init(failedTasks: two + [old])).isEmpty)
        let third = Self.failedTask(4, code: .toolFailed, at: now.addingTimeInterval(-60))
        #expect(rules(.init(failedTasks: two + [third])) == ["task-failing srv1/backup/env"])
        // A store refused for its marker is named on its own.
        let marker = Self.failedTask(5, node: "vault", code: .storeMarker, at: now.addingTimeInterval(-60))
        #expect(rules(.init(failedTasks: [marker])) == ["store-marker vault"])
        // A slot whose run could not start, or that the hub missed.
        let missed = ScheduleInfo(
            node: "srv1", source: "env", schedule: "0 3 * * *", timeZone: "UTC", jitterSeconds: 0, nextFire: nil,
            backedUpWith: nil, lastSlot: now.addingTimeInterval(-3600),
            lastOutcome: "missed: the hub was down past catch_up_within", lastTask: nil)
        #expect(rules(.init(schedules: [missed])) == ["run-not-started srv1/env"])
    }

    @Test func aDiskFillingAtItsWeeksPaceFiresBeforeItIsFull() throws {
        // 100 GiB free, losing 5 GiB a day: full in 20 days.
        let day = 86_400.0
        let shrinking = (0...28).map { i in
            Catalog.Sample(
                at: Self.t0.addingTimeInterval(Double(i) * day / 4), value: (100 - Double(i) * 1.25) * 1_073_741_824)
        }
        let now = shrinking.last!.at
        let full = try #require(DiskTrend.projectedFull(shrinking))
        #expect(abs(full.timeIntervalSince(Self.t0) - 20 * day) < 60, "\(full)")
        func rules(_ samples: [Catalog.Sample], within days: Double) -> [String] {
            var site = Self.site
            site.alerts.diskFullWithin = days * day
            return AlertRules.evaluate(
                status: Self.status(), nodes: [Self.node("srv1", heard: now), Self.node("vault", heard: now)],
                failed: [], site: site, now: now, history: .init(diskFree: ["vault": samples])
            ).map { "\($0.rule.rawValue) \($0.subject)" }
        }
        // 7 days after the start, 13 days are left.
        #expect(rules(shrinking, within: 14) == ["disk-filling vault"])
        #expect(rules(shrinking, within: 10).isEmpty)
        // Growing free space, a flat line, or too little history: no projection.
        #expect(
            DiskTrend.projectedFull(
                shrinking.reversed().enumerated().map {
                    Catalog.Sample(at: shrinking[$0.offset].at, value: $0.element.value)
                }) == nil)
        #expect(DiskTrend.projectedFull(shrinking.map { Catalog.Sample(at: $0.at, value: 5) }) == nil)
        #expect(DiskTrend.projectedFull(Array(shrinking.prefix(2))) == nil)
    }

    @Test func samplesAreAveragedToHoursAfterAMonthAndToDaysAfterAYear() async throws {
        try await withTemporaryDirectory("samples") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let start = Date(timeIntervalSince1970: 1_700_006_400)  // a whole day, UTC
            for i in 0..<24 {  // two hours of 5-minute samples: 0...11 in the first, 12...23 in the second
                try await catalog.addSamples(
                    ["disk.free:vault": Double(i)], at: start.addingTimeInterval(Double(i) * 300))
            }
            try await catalog.downsampleSamples(now: start.addingTimeInterval(31 * 86_400))
            let hourly = try await catalog.samples("disk.free:vault", since: .distantPast)
            #expect(hourly.map(\.value) == [5.5, 17.5], "\(hourly)")
            #expect(hourly.map(\.at) == [start, start.addingTimeInterval(3600)])
            try await catalog.downsampleSamples(now: start.addingTimeInterval(367 * 86_400))
            #expect(try await catalog.samples("disk.free:vault", since: .distantPast).map(\.value) == [11.5])
            try await catalog.downsampleSamples(now: start.addingTimeInterval(4 * 366 * 86_400))
            #expect(try await catalog.samples("disk.free:vault", since: .distantPast).isEmpty, "gone after 3 years")
            // The service samples each registered node's disk.
            try await catalog.register(
                name: "srv1", role: .agent,
                RegisterRequest(version: "0.3.0", storePath: "/s", diskTotal: 1000, diskFree: 600, kinds: []),
                now: start)
            let clock = ManualClock()
            try await SampleService(
                catalog: catalog, wallClock: clock, clock: clock, logger: Logger(label: "test")
            ).sample()
            #expect(try await catalog.samples("disk.free:srv1", since: .distantPast).map(\.value) == [600])
            #expect(try await catalog.samples("disk.total:srv1", since: .distantPast).map(\.value) == [1000])
        }
    }

    static func condition(_ rule: AlertRule, _ subject: String, node: String? = nil) -> AlertRules.Condition {
        AlertRules.Condition(rule: rule, subject: subject, node: node, summary: "\(rule.rawValue) of \(subject)")
    }

    /// Steps the book and marks every notice sent; returns them as "kind rule subject".
    static func step(
        _ book: inout AlertBook, _ conditions: [AlertRules.Condition], at now: Date, silences: [SilenceInfo] = [],
        failing: Bool = false
    ) -> [String] {
        var policy = AlertPolicy()
        policy.repeatSeconds = 24 * 3600
        let notices = book.step(conditions, silences: silences, policy: policy, now: now)
        for notice in notices { book.markSent(notice, at: now, error: failing ? "sendmail: exit 75" : nil) }
        return notices.map {
            "\($0.kind.rawValue) \($0.alert.rule.rawValue) \($0.alert.subject)"
                + ($0.folded.isEmpty ? "" : " +\($0.folded.map(\.rule.rawValue))")
        }
    }

    @Test func anAlertFiresOnceRepeatsDailyAndResolvesOnce() throws {
        var book = AlertBook()
        let late = [Self.condition(.backupMissing, "srv1/env", node: "srv1")]
        #expect(Self.step(&book, late, at: Self.t0) == ["firing backup-missing srv1/env"])
        #expect(Self.step(&book, late, at: Self.t0.addingTimeInterval(60)).isEmpty, "once")
        #expect(Self.step(&book, late, at: Self.t0.addingTimeInterval(23 * 3600)).isEmpty)
        #expect(
            Self.step(&book, late, at: Self.t0.addingTimeInterval(24 * 3600)) == ["repeating backup-missing srv1/env"])
        // A restart: the book from the catalog's JSON sends nothing again.
        var restarted = AlertBook(
            tracks: try WireJSON.decoder().decode(
                [String: AlertBook.Track].self, from: try WireJSON.encoder().encode(book.tracks)))
        #expect(Self.step(&restarted, late, at: Self.t0.addingTimeInterval(25 * 3600)).isEmpty)
        #expect(
            Self.step(&restarted, [], at: Self.t0.addingTimeInterval(26 * 3600)) == ["resolved backup-missing srv1/env"]
        )
        #expect(Self.step(&restarted, [], at: Self.t0.addingTimeInterval(27 * 3600)).isEmpty, "resolved once")
        #expect(restarted.list(all: false).isEmpty && restarted.list(all: true).map(\.phase) == [.resolved])
        // It comes back: a new alert.
        #expect(
            Self.step(&restarted, late, at: Self.t0.addingTimeInterval(28 * 3600)) == ["firing backup-missing srv1/env"]
        )
    }

    @Test func aSilenceQuietsAnAlertUntilItEndsAndASilentAgentFoldsItsNodesAlerts() {
        var book = AlertBook()
        let disk = Self.condition(.diskLow, "vault", node: "vault")
        let silence = SilenceInfo(
            id: 1, rule: .diskLow, source: nil, node: "vault", until: Self.t0.addingTimeInterval(3600),
            reason: "new disk",
            by: "root")
        #expect(Self.step(&book, [disk], at: Self.t0, silences: [silence]).isEmpty)
        #expect(book.list(all: false).first?.quiet?.contains("silenced until") == true)
        #expect(
            Self.step(&book, [disk], at: Self.t0.addingTimeInterval(3601), silences: [silence]) == [
                "firing disk-low vault"
            ])
        // A silence that resolved quietly owes nothing.
        var quiet = AlertBook()
        _ = Self.step(&quiet, [disk], at: Self.t0, silences: [silence])
        #expect(Self.step(&quiet, [], at: Self.t0.addingTimeInterval(60), silences: [silence]).isEmpty)

        // vault's agent goes silent: its disk alert and the copy it lacks fold into one notice.
        var folding = AlertBook()
        let conditions = [
            Self.condition(.agentSilent, "vault", node: "vault"), disk,
            Self.condition(.verifyOverdue, "vault:srv1/env", node: "vault"),
            Self.condition(.backupMissing, "srv1/env", node: "srv1"),
        ]
        #expect(
            Self.step(&folding, conditions, at: Self.t0) == [
                "firing agent-silent vault +[\"disk-low\", \"verify-overdue\"]", "firing backup-missing srv1/env",
            ])
        // The agent is back: its own alerts notify on their own now, the silence resolves.
        #expect(
            Self.step(&folding, [disk], at: Self.t0.addingTimeInterval(60)) == [
                "resolved agent-silent vault", "resolved backup-missing srv1/env", "firing disk-low vault",
            ])
    }

    @Test func aNoticeThatFailedIsTriedAgainAndItsErrorShown() {
        var book = AlertBook()
        let late = [Self.condition(.backupMissing, "srv1/env", node: "srv1")]
        #expect(Self.step(&book, late, at: Self.t0, failing: true) == ["firing backup-missing srv1/env"])
        #expect(book.list(all: false).first?.deliveryError == "sendmail: exit 75")
        #expect(Self.step(&book, late, at: Self.t0.addingTimeInterval(60)) == ["firing backup-missing srv1/env"])
        #expect(book.list(all: false).first?.deliveryError == nil)
        #expect(
            Self.step(&book, [], at: Self.t0.addingTimeInterval(120), failing: true) == [
                "resolved backup-missing srv1/env"
            ])
        #expect(Self.step(&book, [], at: Self.t0.addingTimeInterval(180)) == ["resolved backup-missing srv1/env"])
        #expect(Self.step(&book, [], at: Self.t0.addingTimeInterval(240)).isEmpty)
    }

    @Test func aMailCarriesNoHeaderAnyNameCouldAdd() {
        let mail = MailMessage(
            from: "scm-backup@hub", to: ["ops@example.org"],
            subject: "[scm-backup] FIRING backup-missing srv1/<script>\r\nBcc: evil@example.org",
            body: "name \u{1B}[31m<script>alert(1)</script>\r\nline two\u{7}")
        let text = mail.render(date: Self.t0)
        let headers = text.components(separatedBy: "\n\n")[0].split(separator: "\n")
        #expect(headers.count == 8, "\(headers)")
        #expect(!headers.contains { $0.hasPrefix("Bcc") })
        #expect(text.contains("Subject: [scm-backup] FIRING backup-missing srv1/<script>Bcc: evil@example.org"))
        #expect(!text.contains("\u{1B}") && !text.contains("\u{7}") && !text.contains("\r"))
        let encoded = MailMessage.headerValue("Sauvegarde réussie")
        #expect(encoded == "=?UTF-8?B?\(Data("Sauvegarde réussie".utf8).base64EncodedString())?=")
        #expect(MailMessage.isAddress("ops@example.org") && !MailMessage.isAddress("ops@example.org\nBcc: x"))
        #expect(!MailMessage.isAddress("<ops@example.org>") && !MailMessage.isAddress("ops"))
    }
}
