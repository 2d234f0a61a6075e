import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The dashboard of a real hub (issue 15, items 1 and 2): its pages fetched with curl and
/// loaded by Debian's chromium (no console error, nothing refused by the policy), their JSON,
/// `/metrics` checked by promtool, the 4xx answers to bad paths; and off loopback, TLS with an
/// operator's certificate or a login, an agent's certificate refused, failed logins throttled.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct DashboardProcessTests {
    struct Fetched {
        var status: Int
        var headers: String
        var body: String
        func header(_ name: String) -> String? {
            headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }.map {
                String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
            }
        }
    }

    /// GET with curl; `options` are more of curl's (certificates, headers).
    static func fetch(_ url: String, _ options: [String] = []) throws -> Fetched {
        let r = try Command.run("/usr/bin/curl", ["-sS", "-i", "--max-time", "20"] + options + [url])
        guard r.status == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "curl \(url): \(r.stderr)"])
        }
        let parts = r.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Fetched(status: status, headers: head, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    static func dashboardPort(_ site: ProcessSite) throws -> Int {
        let text = try BackgroundProcess.waitForFile(site.dir.file("dashboard-port"))
        return try #require(Int(text))
    }

    @Test func aRealSitesDashboardServesItsPagesToCurlChromiumAndPromtool() async throws {
        try await blocking {
            try withTemporaryDirectory("dashboard") { dir in
                var passed = false
                let conf = dir.file("conf")
                try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
                try "listen 80\n".write(toFile: conf + "/server.conf", atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir,
                    nodes: [.init("srv1", sources: [("conf", "folder", conf)]), .init("bak1", roles: ["backup"])],
                    pairings: [("srv1", "bak1")], transfers: true)
                site.siteTables = "[dashboard]\nlisten = \"127.0.0.1:0\""
                defer {
                    if !passed { site.printLogs(["coordinator.log", "agent-srv1.log", "agent-bak1.log"]) }
                }
                try site.startCoordinator(arguments: ["--dashboard-port-file", dir.file("dashboard-port")])
                for name in ["srv1", "bak1"] { try site.startAgent(name, dataPort: true) }
                try site.waitUntilOnline(2)
                let run = try site.admin(["run", "--wait", "--poll-seconds", "0.5"])
                #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
                let base = "http://127.0.0.1:\(try Self.dashboardPort(site))"

                // The grid: both nodes, the source fresh on srv1 and verified on bak1.
                let home = try Self.fetch(base + "/")
                #expect(home.status == 200)
                #expect(home.header("Content-Type") == "text/html; charset=utf-8")
                let policy = try #require(home.header("Content-Security-Policy"))
                #expect(policy.contains("default-src 'none'") && !policy.contains("unsafe"))
                #expect(home.header("X-Content-Type-Options") == "nosniff")
                #expect(home.header("Set-Cookie") == nil)
                #expect(home.body.contains("<a href=\"/sources/srv1/conf\">srv1/conf</a>"), "\(home.body)")
                #expect(home.body.contains("<td class=\"cell fresh\" title=\"conf on srv1: fresh\">"), "\(home.body)")
                #expect(home.body.contains("<td class=\"cell fresh\" title=\"conf on bak1: fresh\">"), "\(home.body)")
                #expect(!home.body.contains("<script"))

                // The same data as JSON, the type GET /v1/status returns.
                struct Status: Decodable {
                    struct Source: Decodable {
                        var node: String
                        var source: String
                        var late: Bool
                    }
                    var sources: [Source]
                }
                let json = try Self.fetch(base + "/", ["-H", "Accept: application/json"])
                #expect(json.header("Content-Type") == "application/json")
                let status = try JSONDecoder().decode(Status.self, from: Data(json.body.utf8))
                #expect(status.sources.map { "\($0.node)/\($0.source)" } == ["srv1/conf"])

                // The source's page with its plot and copies; a bare name finds it too.
                let source = try Self.fetch(base + "/sources/srv1/conf")
                #expect(source.status == 200)
                #expect(source.body.contains("<svg class=\"plot\""))
                #expect(source.body.contains("bak1: intact, verified "), "\(source.body)")
                #expect(try Self.fetch(base + "/sources/conf").body.contains("<svg class=\"plot\""))
                struct SourcePage: Decodable {
                    struct Artifact: Decodable { var copies: [Copy] }
                    struct Copy: Decodable { var node: String }
                    var artifacts: [Artifact]
                    var runs: [Run]
                    struct Run: Decodable { var id: Int64 }
                }
                let sourceJSON = try JSONDecoder().decode(
                    SourcePage.self,
                    from: Data(
                        try Self.fetch(base + "/sources/srv1/conf", ["-H", "Accept: application/json"]).body.utf8))
                #expect(sourceJSON.artifacts.first?.copies.map(\.node).sorted() == ["bak1", "srv1"])
                let runID = try #require(sourceJSON.runs.first?.id)
                for path in ["/nodes/srv1", "/nodes/bak1", "/runs", "/runs/\(runID)", "/alerts", "/style.css"] {
                    let page = try Self.fetch(base + path)
                    #expect(page.status == 200, "\(path): \(page.status) \(page.body)")
                }
                #expect(try Self.fetch(base + "/nodes/srv1").body.contains("Recent tasks"))

                // Bad input is a 4xx page, never a crash.
                #expect(try Self.fetch(base + "/nope").status == 404)
                #expect(try Self.fetch(base + "/sources/srv1/nope").status == 404)
                let hostile = try Self.fetch(base + "/nodes/%3Cscript%3E")
                #expect(hostile.status == 404 && hostile.body.contains("&lt;script&gt;"), "\(hostile.body)")
                #expect(try Self.fetch(base + "/runs/abc").status == 400)
                #expect(try Self.fetch(base + "/runs/999999").status == 404)
                #expect(try Self.fetch(base + "/nodes/%FF%FE").status / 100 == 4)
                #expect(try Self.fetch(base + "/?q=" + String(repeating: "x", count: 5000)).status == 414)
                let post = try Command.run(
                    "/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", base + "/"])
                #expect(post.stdout.hasPrefix("4"), "a POST is refused: \(post.stdout)")
                #expect(try Self.fetch(base + "/").status == 200, "the hub still answers")

                // Chromium loads the grid and a source's page: no console message, nothing the
                // policy refused, and the DOM it built holds the grid.
                for path in ["/", "/sources/srv1/conf"] {
                    let chromium = try Command.run(
                        "/usr/bin/chromium",
                        [
                            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                            "--user-data-dir=\(dir.file("chromium-profile"))", "--enable-logging=stderr", "--v=0",
                            "--dump-dom", base + path,
                        ])
                    #expect(chromium.status == 0, "\(chromium.stderr)")
                    #expect(
                        chromium.stdout.contains(path == "/" ? "id=\"grid\"" : "class=\"plot\""), "\(chromium.stdout)")
                    let console = chromium.stderr.split(separator: "\n").filter {
                        $0.contains("CONSOLE") || $0.contains("Content Security Policy") || $0.contains("Refused to")
                    }
                    #expect(console.isEmpty, "\(path): \(console.joined(separator: "\n"))")
                }

                // /metrics: help on every family, the site's series, promtool's approval.
                let metrics = try Self.fetch(base + "/metrics")
                #expect(metrics.status == 200)
                #expect(
                    metrics.body.contains("scm_backup_newest_artifact_size_bytes{source=\"srv1/conf\",node=\"bak1\"}"),
                    "\(metrics.body)")
                #expect(metrics.body.contains("scm_backup_verified_copies{source=\"srv1/conf\"} 1"))
                #expect(metrics.body.contains("scm_backup_agents_online 2"))
                #expect(
                    metrics.body.contains(
                        "scm_backup_task_results_total{kind=\"backup\",outcome=\"succeeded\",code=\"none\"}"))
                let families = metrics.body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
                let helps = metrics.body.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }
                #expect(families.count >= 15 && helps.count == families.count, "\(metrics.body)")
                let promtool = try Command.run("/bin/sh", ["-c", "promtool check metrics"], input: metrics.body)
                #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")
                passed = true
            }
        }
    }

    @Test func offLoopbackItWantsAnOperatorsCertificateOrALoginAndThrottlesFailures() async throws {
        try await blocking {
            try withTemporaryDirectory("dashboard-tls") { dir in
                var passed = false
                let site = try ProcessSite(dir, nodes: [.init("srv1")])
                try site.issue("viewer", role: "operator")
                // Python's hashlib.scrypt(b"s3cret", salt=b"0123456789abcdef", n=16384, r=8, p=1).
                let passwords = dir.file("dashboard.passwords")
                try "ops:scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$qmDKqPmblHBa7mzhr6QqhXNlhsWC0zhaHnYqFzkfoMc=\n"
                    .write(toFile: passwords, atomically: true, encoding: .utf8)
                #expect(chmod(passwords, 0o644) == 0)
                site.siteTables = """
                    [dashboard]
                    listen = "127.0.0.1:0"
                    login = true
                    password_file = \(SiteConfigFiles.quote(passwords))
                    login_failures_per_minute = 3
                    """
                defer {
                    if !passed { site.printLogs(["coordinator.log"]) }
                }
                // A password file others may read stops the hub, naming it.
                try SiteConfigFiles.writeCoordinator(
                    dir.file("site.toml"), listen: "127.0.0.1:0", certs: dir.file("certs"), pki: dir.file("pki"),
                    database: dir.file("catalog.sqlite"), nodes: site.nodes, pairings: [], extra: "",
                    pairingExtra: [:], schedule: site.schedule, tables: site.siteTables)
                let loose = try Command.scmBackup(["coordinator", "--config", dir.file("site.toml"), "--check"])
                #expect(loose.status != 0)
                #expect(loose.stderr.contains("dashboard.password_file"), "\(loose.stderr)")
                #expect(loose.stderr.contains("readable by its group or others"), "\(loose.stderr)")
                #expect(chmod(passwords, 0o600) == 0)

                try site.startCoordinator(arguments: ["--dashboard-port-file", dir.file("dashboard-port")])
                // The hub's certificate names "hub": curl checks the name, reaching it on loopback.
                let port = try Self.dashboardPort(site)
                let base = "https://hub:\(port)"
                let ca = ["--cacert", dir.file("pki/ca.pem"), "--resolve", "hub:\(port):127.0.0.1"]
                func with(_ name: String) -> [String] {
                    ca + ["--cert", dir.file("certs/\(name).pem"), "--key", dir.file("certs/\(name).key")]
                }
                // Nothing shown: 401 with a Basic challenge. Plain HTTP gets nothing.
                let bare = try Self.fetch(base + "/", ca)
                #expect(bare.status == 401)
                #expect(bare.header("WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
                #expect(
                    try Command.run(
                        "/usr/bin/curl",
                        ["-sS", "--max-time", "10", "http://127.0.0.1:\(try Self.dashboardPort(site))/"]
                    ).stdout.isEmpty)
                // An operator's and an admin's certificate are enough; an agent's never is.
                #expect(try Self.fetch(base + "/", with("viewer")).status == 200)
                #expect(try Self.fetch(base + "/metrics", with("root")).status == 200)
                let agent = try Self.fetch(base + "/", with("srv1") + ["-u", "ops:s3cret"])
                #expect(agent.status == 403 && agent.body.contains("may not read the dashboard"), "\(agent.body)")
                // A login from the password file.
                #expect(try Self.fetch(base + "/", ca + ["-u", "ops:s3cret"]).status == 200)
                // Failed logins: three refused, then the address waits.
                for _ in 0..<3 {
                    let wrong = try Self.fetch(
                        base + "/alerts", ca + ["-u", "ops:guess", "-H", "Accept: application/json"])
                    #expect(wrong.status == 401 && wrong.body.contains("login-failed"), "\(wrong.body)")
                }
                let throttled = try Self.fetch(base + "/", ca + ["-u", "ops:s3cret"])
                #expect(throttled.status == 429 && throttled.header("Retry-After") == "60", "\(throttled.headers)")
                // A certificate still works while logins wait.
                #expect(try Self.fetch(base + "/", with("viewer")).status == 200)
                let log = try String(contentsOfFile: dir.file("coordinator.log"), encoding: .utf8)
                #expect(log.contains("too-many-logins"), "the refusals are logged")
                passed = true
            }
        }
    }
}
