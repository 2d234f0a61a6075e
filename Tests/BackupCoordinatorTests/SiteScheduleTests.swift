import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// The site file's schedules: the `[schedule]` defaults, a source's own `schedule` and
/// `time_zone`, and a Trac environment backed up under its svn source's schedule.
struct SiteScheduleTests {
    static func site(_ text: String) throws -> SiteConfiguration {
        try withTemporaryDirectory("schedule") { dir in
            try text.write(toFile: dir.file("site.toml"), atomically: true, encoding: .utf8)
            return try SiteConfiguration.read(try ConfigFile(path: dir.file("site.toml")).top)
        }
    }

    @Test func sourcesFollowTheDefaultsTheirOwnScheduleOrTheirSvnSources() throws {
        let site = try Self.site(
            """
            [schedule]
            default = "0 2 * * *"
            time_zone = "Europe/Berlin"
            jitter_seconds = 300
            catch_up_within = "12h"

            [nodes.cms]
            roles = ["server"]
            [nodes.cms.sources.env]
            kind = "svn"
            path = "/var/scm/repos/env"
            schedule = "0 9,15 * * *"
            time_zone = "Asia/Shanghai"
            [nodes.cms.sources.env-trac]
            kind = "trac"
            path = "/var/scm/tracs/env"
            svn_source = "env"
            [nodes.cms.sources.conf]
            kind = "folder"
            path = "/etc/scm"
            [nodes.cms.sources.old]
            kind = "folder"
            path = "/srv/old"
            schedule = "off"
            """)
        #expect(site.schedule.catchUpWithin == 12 * 3600 && site.schedule.catchUp)
        let schedules = try #require(site.node("cms")?.schedules)
        #expect(schedules["env"]?.expression?.text == "0 9,15 * * *")
        #expect(schedules["env"]?.zone.identifier == "Asia/Shanghai")
        #expect(schedules["env-trac"] == schedules["env"], "the Trac environment goes with its repository")
        #expect(schedules["conf"]?.expression?.text == "0 2 * * *")
        #expect(schedules["conf"]?.zone.identifier == "Europe/Berlin")
        #expect((0..<300).contains(schedules["conf"]?.jitterSeconds ?? -1))
        #expect(schedules["conf"]?.jitterSeconds == SourceSchedule.jitter(for: "cms/conf", limit: 300))
        #expect(schedules["old"]?.expression == nil && schedules["old"]?.nextFire(after: Date()) == nil)
        // Without a [schedule] table: every night at 02:00 UTC.
        let plain = try Self.site(
            """
            [nodes.cms]
            roles = ["server"]
            [nodes.cms.sources.conf]
            kind = "folder"
            path = "/etc/scm"
            """)
        #expect(plain.node("cms")?.schedules["conf"]?.expression?.text == "0 2 * * *")
        #expect(plain.node("cms")?.schedules["conf"]?.zone.secondsFromGMT() == 0)  // Foundation calls it GMT.
    }

    static let pairedSite = """
        [nodes.cms]
        roles = ["server"]
        [nodes.cms.sources.conf]
        kind = "folder"
        path = "/etc/scm"
        %COPIES%
        [nodes.vault]
        roles = ["backup"]
        max_transfers = 5
        [[pairings]]
        server = "cms"
        backup = "vault"
        """

    @Test func runLimitsAndCopiesAreReadAndCopiesBeyondThePairingsAreRefusedNamingTheKey() throws {
        let site = try Self.site(
            "[runs]\noffline_wait = \"3d\"\nbackup_max_duration = \"2h\"\nmax_transfers = 3\nmax_attempts = 4\n\n"
                + Self.pairedSite.replacingOccurrences(of: "%COPIES%", with: "copies = 1"))
        #expect(site.runs.offlineWait == 3 * 86_400 && site.runs.backupMaxDuration == 7200)
        #expect(site.runs.transferMaxDuration == 12 * 3600, "the default")
        #expect(site.runs.maxAttempts == 4)
        #expect(site.copiesWanted(node: "cms", source: "conf") == 1)
        #expect(site.maxTransfers(to: "vault") == 5 && site.runs.maxTransfers == 3)
        #expect(site.receivers(of: "cms") == ["vault"])
        let plain = try Self.site(Self.pairedSite.replacingOccurrences(of: "%COPIES%", with: ""))
        #expect(plain.copiesWanted(node: "cms", source: "conf") == 1, "every paired backup node")

        for (text, key, words) in [
            (
                Self.pairedSite.replacingOccurrences(of: "%COPIES%", with: "copies = 2"), "copies",
                "more than the backup nodes"
            ),
            (
                "[runs]\noffline_wait = \"soon\"\n" + Self.pairedSite.replacingOccurrences(of: "%COPIES%", with: ""),
                "offline_wait", "not a duration"
            ),
            (
                "[runs]\nretries = 3\n" + Self.pairedSite.replacingOccurrences(of: "%COPIES%", with: ""), "retries",
                "unknown key"
            ),
        ] {
            do {
                _ = try Self.site(text)
                Issue.record("accepted: \(key)")
            } catch let error as BackupError {
                #expect(error.message.contains(key) && error.message.contains(words), "\(error.message)")
                #expect(error.message.contains("site.toml"), "names the file: \(error.message)")
            }
        }
    }
}
