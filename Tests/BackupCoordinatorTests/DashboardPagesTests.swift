import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import Testing

@testable import BackupCoordinator

/// The dashboard's pages and logins without a listener: hostile text escaped everywhere, the
/// grid's states, the plots, the password file and the login throttle.
struct DashboardPagesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    /// What a hostile agent or repository might put in a name, a problem or a commit: markup,
    /// quotes, a header injection, terminal escapes, and bytes that are not UTF-8 (decoded as
    /// U+FFFD, as every string from the wire is).
    static let hostile =
        "<script>alert(1)</script>\"'&\r\nBcc: x@evil\u{1B}[31m\u{07}"
        + String(decoding: [0xFF, 0xFE, 0x41], as: UTF8.self)

    func status(_ text: String) -> SiteStatus {
        SiteStatus(
            generatedAt: now,
            sources: [
                SourceStatus(
                    node: "srv1", source: "repo", kind: "svn",
                    newest: NewestArtifact(
                        path: text, stamp: "20261201-0100", created: now.addingTimeInterval(-3600), size: 2048,
                        revision: text, ageSeconds: 3600),
                    late: false, lastSlot: nil, nextRun: nil,
                    copies: [
                        CopyStatus(
                            node: "bak1", state: .mutant, verifiedAt: nil, verified: false, verifyOverdue: false),
                        CopyStatus(node: "bak2", state: .intact, verifiedAt: now, verified: true, verifyOverdue: false),
                    ], refusal: text),
                SourceStatus(
                    node: "srv1", source: "conf", kind: "folder", newest: nil, late: true, lastSlot: nil, nextRun: nil,
                    copies: []),
            ],
            nodes: [
                NodeSummary(
                    name: "srv1", roles: ["server"], online: true, diskFree: 10 << 30, diskTotal: 100 << 30,
                    tasksQueued: 0, tasksRunning: 1),
                NodeSummary(
                    name: "bak1", roles: ["backup"], online: false, diskFree: nil, diskTotal: nil, tasksQueued: 2,
                    tasksRunning: 0),
                NodeSummary(
                    name: "bak2", roles: ["backup"], online: true, diskFree: 1, diskTotal: 2, tasksQueued: 0,
                    tasksRunning: 0),
            ])
    }

    /// No raw markup, control character or CR of the hostile text survives, and its escaped
    /// form is there.
    func expectEscaped(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!html.contains("<script"), sourceLocation: sourceLocation)
        #expect(!html.contains("\r"), sourceLocation: sourceLocation)
        #expect(!html.contains("\u{1B}"), sourceLocation: sourceLocation)
        #expect(!html.contains("\u{07}"), sourceLocation: sourceLocation)
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), sourceLocation: sourceLocation)
        #expect(html.contains("\u{FFFD}"), sourceLocation: sourceLocation)
    }

    @Test func theSiteGridEscapesHostileTextAndColoursEachCell() throws {
        let pages = try DashboardPages()
        let html = pages.site(status(Self.hostile), firing: 2)
        expectEscaped(html)
        #expect(html.contains("<td class=\"cell fresh\" title=\"repo on srv1: fresh\">60 min</td>"))
        #expect(html.contains("<td class=\"cell mutant\""))
        #expect(html.contains("<td class=\"cell missing\" title=\"conf on srv1: missing\">no backup</td>"))
        #expect(html.contains("href=\"/sources/srv1/repo\""))
        #expect(html.contains("<span class=\"badge\">2</span>"))
        #expect(html.contains("10.0 GiB free of 100.0 GiB (10 %)"))
        #expect(!html.contains("style="), "the policy allows no inline style")
    }

    @Test func theSourcePageEscapesArtifactsRunsAndPlotLabels() throws {
        let pages = try DashboardPages()
        let s = status(Self.hostile).sources[0]
        var artifacts: [ArtifactInfo] = []
        for i in 0..<3 {
            let size = Int64(1000 * (i + 1))
            let made = now.addingTimeInterval(Double(i) * 86_400)
            let copy = CopyInfo(
                node: "bak1", path: Self.hostile, size: size, state: .intact, seenAt: now, verifiedAt: now,
                problem: Self.hostile)
            artifacts.append(
                ArtifactInfo(
                    origin: "srv1", kind: "svn", source: "repo", stamp: "2026120\(i)-0100", fileName: Self.hostile,
                    size: size, sha256: nil, md5: nil, revision: Self.hostile, created: made, copies: [copy]))
        }
        let run = RunInfo(
            id: 7, trigger: .manual, requestedBy: Self.hostile, state: .succeeded, startedAt: now,
            finishedAt: now.addingTimeInterval(60), sources: [], summary: Self.hostile)
        let html = pages.source(SourcePage(status: s, artifacts: artifacts, runs: [run]), firing: 0, now: now)
        expectEscaped(html)
        #expect(html.contains("<svg class=\"plot\""))
        #expect(html.contains("<polyline points="))
        #expect(html.contains("href=\"/runs/7\""))
        let alertHTML = pages.alerts(
            [
                AlertInfo(
                    rule: .mutant, subject: Self.hostile, node: "bak1", phase: .firing, summary: Self.hostile,
                    since: now)
            ], firing: 1, now: now)
        expectEscaped(alertHTML)
        expectEscaped(pages.error(status: 404, message: Self.hostile, now: now))
    }

    @Test func aPlotThinsLongSeriesAndSaysWhenItHasNoData() {
        let points = (0..<5000).map { (at: now.addingTimeInterval(Double($0) * 300), value: Double($0)) }
        let svg = SVGPlot(title: "t", series: [SVGPlot.Series(name: "<b>", points: points)], format: { "\($0)" })
            .render()
        #expect(svg.components(separatedBy: "<circle").count - 1 == SVGPlot.maxPoints)
        #expect(svg.contains("&lt;b&gt;"))
        #expect(!svg.contains("<b>"))
        let empty = SVGPlot(title: "none", series: [], format: { "\($0)" }).render()
        #expect(empty.contains("no data yet"))
    }

    @Test func passwordFilesOfPythonsHashesVerifyAndBadOnesAreRefusedByLine() throws {
        try withTemporaryDirectory("passwords") { dir in
            // Made by Python: hashlib.scrypt(b"s3cret", salt=b"0123456789abcdef", n=16384, r=8,
            // p=1, dklen=32) and hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 210000).
            let file = dir.file("passwords")
            try """
            # dashboard logins
            ops:scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$qmDKqPmblHBa7mzhr6QqhXNlhsWC0zhaHnYqFzkfoMc=
            audit:pbkdf2-sha256$210000$MDEyMzQ1Njc4OWFiY2RlZg==$cquqMVzxoqFSproB/JsEeqeGiEktSDkUuQHYAvzEmA4=
            mine:\(try PasswordFile.scryptHash("longer pass phrase"))

            """.write(toFile: file, atomically: true, encoding: .utf8)
            #expect(chmod(file, 0o600) == 0)
            let passwords = try PasswordFile.load(file)
            #expect(passwords.verify(user: "ops", password: "s3cret"))
            #expect(passwords.verify(user: "audit", password: "s3cret"))
            #expect(passwords.verify(user: "mine", password: "longer pass phrase"))
            #expect(!passwords.verify(user: "ops", password: "s3cret "))
            #expect(!passwords.verify(user: "audit", password: "S3cret"))
            #expect(!passwords.verify(user: "nobody", password: "s3cret"))

            #expect(chmod(file, 0o640) == 0)
            let loose = #expect(throws: BackupError.self) { try PasswordFile.load(file) }
            #expect(loose?.message.contains("readable by its group or others (mode 640)") == true)
            for (line, why) in [
                ("ops", "expected USER:HASH"),
                ("ops:md5$abc", "neither scrypt"),
                ("ops:pbkdf2-sha256$100000$MDEy$MDEy", "use 210000 to 10000000"),
                ("ops:scrypt$1000$8$1$MDEy$MDEy", "power of two"),
                ("ops:scrypt$16384$8$1$!!$MDEy", "salt is not base64"),
            ] {
                try "# first\n\(line)\n".write(toFile: file, atomically: true, encoding: .utf8)
                #expect(chmod(file, 0o600) == 0)
                let error = #expect(throws: BackupError.self) { try PasswordFile.load(file) }
                #expect(error?.message.hasPrefix("\(file):2: ") == true, "\(line): \(error?.message ?? "")")
                #expect(error?.message.contains(why) == true, "\(line): \(error?.message ?? "")")
            }
        }
    }

    @Test func failedLoginsAreThrottledPerAddressForAMinute() {
        let throttle = LoginThrottle(limit: 3)
        for i in 0..<3 {
            #expect(throttle.retryAfter("10.0.0.1", now: now) == nil)
            throttle.failed("10.0.0.1", now: now.addingTimeInterval(Double(i)))
        }
        #expect(throttle.retryAfter("10.0.0.1", now: now.addingTimeInterval(3)) == 59)
        #expect(throttle.retryAfter("10.0.0.2", now: now.addingTimeInterval(3)) == nil)
        #expect(throttle.retryAfter("10.0.0.1", now: now.addingTimeInterval(63)) == nil)
    }
}
