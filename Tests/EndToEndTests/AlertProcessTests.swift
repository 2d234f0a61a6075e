import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The alert service of a real hub (issue 15, items 3 and 6): an agent that stops is noticed,
/// one mail goes through the sendmail-compatible command (its argv run without a shell, the
/// message on stdin), `alerts` lists it firing (exit 3), a silence is audited, the agent's return
/// sends the resolved notice, and a restarted hub sends nothing again.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct AlertProcessTests {
    /// A Python web server on loopback (`python3 -u ARGS`) and the port it printed (`… port N`).
    static func server(_ arguments: [String], log: String) throws -> (BackgroundProcess, String) {
        let process = try BackgroundProcess("/usr/bin/env", ["python3", "-u"] + arguments, log: log)
        var port = ""
        do {
            try ProcessSite.waitUntil("\(arguments[0]) listens", seconds: 20) {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""  // not written yet
                guard let range = text.range(of: "port ") else { return false }
                port = String(text[range.upperBound...].prefix { $0.isNumber })
                return !port.isEmpty
            }
        } catch {
            _ = process.stop(SIGKILL)
            throw error
        }
        return (process, port)
    }

    @Test func aSilentAgentIsMailedOnceThenResolvedAndARestartResendsNothing() async throws {
        try await blocking {
            try withTemporaryDirectory("alerts") { dir in
                var passed = false
                // A sendmail stand-in: each message it is given on stdin becomes a file.
                let outbox = dir.file("outbox")
                try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
                let sendmail = dir.file("sendmail")
                try
                    "#!/bin/sh\n[ \"$1\" = -t ] && [ \"$2\" = -oi ] || exit 64\ncat > \(outbox)/mail-$(date +%s%N).txt\n"
                    .write(toFile: sendmail, atomically: true, encoding: .utf8)
                #expect(chmod(sendmail, 0o755) == 0)
                // The outside monitor of the dead-man heartbeat: a web server on loopback.
                let www = dir.file("www")
                try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
                try "ok\n".write(toFile: www + "/ping-1f2e", atomically: true, encoding: .utf8)
                let (monitor, monitorPort) = try Self.server(
                    ["-m", "http.server", "--bind", "127.0.0.1", "--directory", www, "0"], log: dir.file("monitor.log"))
                defer { _ = monitor.stop(SIGKILL) }
                let urlFile = dir.file("heartbeat.url")
                try "http://127.0.0.1:\(monitorPort)/ping-1f2e\n".write(
                    toFile: urlFile, atomically: true, encoding: .utf8)
                let site = try ProcessSite(
                    dir, nodes: [.init("srv1", sources: [("conf", "folder", dir.file("conf"))])],
                    coordinatorExtra: "heartbeat_seconds = 1")
                site.siteTables = """
                    [alerts]
                    agent_silent_after = "3s"
                    evaluate_seconds = 1
                    to = ["ops@example.org"]
                    from = "scm-backup@hub.example.org"
                    daily_report = "00:00"
                    [alerts.sendmail]
                    command = [\(SiteConfigFiles.quote(sendmail)), "-t", "-oi"]
                    [alerts.heartbeat]
                    url_file = \(SiteConfigFiles.quote(urlFile))
                    heartbeat_minutes = 0.02
                    """
                defer {
                    if !passed { site.printLogs(["coordinator.log"]) }
                }
                func mails() throws -> [String] {
                    try FileManager.default.contentsOfDirectory(atPath: outbox).sorted().map {
                        try String(contentsOfFile: outbox + "/" + $0, encoding: .utf8)
                    }
                }
                try site.startCoordinator()
                try site.startAgent("srv1")
                try site.waitUntilOnline(1)
                // The agent was silent before it registered: that alert resolves.
                try site.waitUntil("no alert firing", seconds: 20) { try site.admin(["alerts"]).status == 0 }
                let before = try mails().count
                site.stop("srv1", SIGKILL)
                try site.waitUntil("the silent agent's mail", seconds: 30) {
                    try mails().dropFirst(before).contains { $0.contains("FIRING agent-silent srv1") }
                }
                let firing = try mails().dropFirst(before).filter { $0.contains("FIRING agent-silent srv1") }
                #expect(firing.count == 1)
                let mail = try #require(firing.first)
                #expect(mail.contains("To: ops@example.org") && mail.contains("From: scm-backup@hub.example.org"))
                #expect(mail.contains("Subject: [scm-backup] FIRING agent-silent srv1"))
                #expect(mail.contains("the agent of srv1 has not been heard from for"))
                let listed = try site.admin(["alerts"])
                #expect(listed.status == 3 && listed.stdout.contains("FIRING  agent-silent  srv1"), "\(listed.stdout)")

                // A silence, audited; the restart of the hub re-sends nothing.
                let silenced = try site.admin([
                    "alerts", "silence", "disk-low", "--node", "srv1", "--for", "2h", "--reason", "new disk ordered",
                ])
                #expect(
                    silenced.status == 0 && silenced.stdout.contains("silenced disk-low until"), "\(silenced.stderr)")
                #expect(try site.admin(["events"]).stdout.contains("POST /v1/alerts/silence"))
                let refused = try site.admin(["alerts", "silence", "loud", "--for", "1h", "--reason", "x"])
                #expect(refused.status == 1 && refused.stderr.contains("'loud' is not a rule"))
                site.stop("hub")
                let sentBeforeRestart = try mails().count
                try site.startCoordinator()
                sleep(3)
                #expect(try mails().count == sentBeforeRestart, "a restarted hub sends nothing again")

                // The agent is back: one resolved notice (the first was of its start, before it registered).
                func resolved() throws -> Int { try mails().filter { $0.contains("RESOLVED agent-silent srv1") }.count }
                let resolvedBefore = try resolved()
                try site.startAgent("srv1")
                try site.waitUntil("the resolved mail", seconds: 30) { try resolved() == resolvedBefore + 1 }
                sleep(2)
                #expect(try resolved() == resolvedBefore + 1, "resolved once")
                let all = try site.admin(["alerts", "--all"])
                #expect(
                    all.status == 0 && all.stdout.contains("RESOLVED  agent-silent  srv1"), "\(all.stdout)\(all.stderr)"
                )
                // The daily report went once (its time, 00:00, has passed today), restart or not.
                let reports = try mails().filter { $0.contains("Subject: [scm-backup] daily report") }
                #expect(reports.count == 1, "\(reports.count) daily reports")
                #expect(reports.first?.contains("- srv1/conf (folder): none") == true, "\(reports.first ?? "")")
                // The monitor was called every heartbeat_minutes; a URL that fails is an alert itself.
                let calls =
                    try String(contentsOfFile: dir.file("monitor.log"), encoding: .utf8)
                    .components(separatedBy: "\"GET /ping-1f2e HTTP/1.1\" 200").count - 1
                #expect(calls >= 3, "\(calls) heartbeats")
                try "http://127.0.0.1:\(monitorPort)/gone\n".write(toFile: urlFile, atomically: true, encoding: .utf8)
                try site.waitUntil("the heartbeat's failure raised", seconds: 20) {
                    try site.admin(["alerts"]).stdout.contains("channel-failing  heartbeat")
                }
                let test = try site.admin(["alerts", "test"])
                #expect(test.status == 0, "\(test.stderr)")
                #expect(try mails().contains { $0.contains("if you read this, the channel works") })
                passed = true
            }
        }
    }

    /// A real SMTP relay (aiosmtpd with STARTTLS required, AUTH only over TLS): the daily report
    /// and a test notice arrive through EHLO, STARTTLS, AUTH PLAIN; a wrong password is a failed
    /// delivery naming the step and the server's answer (issue 15, item 5).
    @Test func anSMTPRelayWithSTARTTLSAndAUTHReceivesTheDailyReportAndATestNotice() async throws {
        try await blocking {
            try withTemporaryDirectory("smtp") { dir in
                var passed = false
                let outbox = dir.file("outbox")
                try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
                // The relay's certificate, for the name "localhost"; the hub trusts it as ca_file.
                let made = try Command.run(
                    "/usr/bin/openssl",
                    [
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost", "-keyout", dir.file("relay.key"), "-out",
                        dir.file("relay.pem"),
                    ])
                #expect(made.status == 0, "\(made.stderr)")
                let relay = dir.file("relay.py")
                try """
                import os, socket, ssl, sys, time
                from aiosmtpd.controller import Controller
                from aiosmtpd.smtp import AuthResult, LoginPassword
                cert, key, outbox = sys.argv[1:4]
                class Handler:
                    async def handle_DATA(self, server, session, envelope):
                        n = len(os.listdir(outbox))
                        head = f"FROM {envelope.mail_from}\\nTO {','.join(envelope.rcpt_tos)}\\nTLS {session.ssl is not None}\\nAUTH {session.authenticated}\\n\\n"
                        with open(f"{outbox}/mail-{n:03d}.txt", "wb") as f:
                            f.write(head.encode() + envelope.original_content)
                        return "250 OK"
                def auth(server, session, envelope, mechanism, data):
                    ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"pa ss"
                    return AuthResult(success=ok, handled=False)
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(cert, key)
                s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
                c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                               authenticator=auth, auth_required=True, auth_require_tls=True)
                c.start()
                print("port", port, flush=True)
                while True: time.sleep(3600)
                """.write(toFile: relay, atomically: true, encoding: .utf8)
                let python = try BackgroundProcess(
                    "/usr/bin/python3", ["-u", relay, dir.file("relay.pem"), dir.file("relay.key"), outbox],
                    log: dir.file("relay.log"))
                defer { _ = python.stop(SIGKILL) }
                var port = ""
                try ProcessSite.waitUntil("the relay listens", seconds: 20) {
                    // The log may not be written yet.
                    let text = (try? String(contentsOfFile: dir.file("relay.log"), encoding: .utf8)) ?? ""
                    guard let range = text.range(of: "port ") else { return false }
                    port = String(text[range.upperBound...].prefix { $0.isNumber })
                    return !port.isEmpty
                }
                let password = dir.file("smtp.password")
                try "pa ss\n".write(toFile: password, atomically: true, encoding: .utf8)
                #expect(chmod(password, 0o600) == 0)
                let site = try ProcessSite(dir, nodes: [.init("srv1", sources: [("conf", "folder", dir.file("conf"))])])
                site.siteTables = """
                    [alerts]
                    evaluate_seconds = 1
                    daily_report = "00:00"
                    from = "scm-backup@hub.example.org"
                    to = ["ops@example.org"]
                    [alerts.smtp]
                    server = "localhost:\(port)"
                    starttls = true
                    username = "alerts"
                    password_file = \(SiteConfigFiles.quote(password))
                    ca_file = \(SiteConfigFiles.quote(dir.file("relay.pem")))
                    """
                defer {
                    if !passed { site.printLogs(["coordinator.log", "relay.log"]) }
                }
                func mails() throws -> [String] {
                    try FileManager.default.contentsOfDirectory(atPath: outbox).sorted().map {
                        try String(contentsOfFile: outbox + "/" + $0, encoding: .utf8)
                    }
                }
                try site.startCoordinator()
                try site.waitUntil("the daily report arrives", seconds: 30) {
                    try mails().contains { $0.contains("Subject: [scm-backup] daily report") }
                }
                let report = try #require(try mails().first { $0.contains("Subject: [scm-backup] daily report") })
                #expect(
                    report.hasPrefix("FROM scm-backup@hub.example.org\nTO ops@example.org\nTLS True\nAUTH True\n"),
                    "\(report)")
                #expect(report.contains("- srv1/conf (folder): none"), "\(report)")
                let test = try site.admin(["alerts", "test"])
                #expect(test.status == 0, "\(test.stderr)")
                #expect(try mails().contains { $0.contains("if you read this, the channel works") })

                // A password file others may read is not used: nothing is sent.
                try "wrong\n".write(toFile: password, atomically: true, encoding: .utf8)
                #expect(chmod(password, 0o644) == 0)
                let loose = try site.admin(["alerts", "test"])
                #expect(
                    loose.status != 0 && loose.stderr.contains("readable by its group or others (mode 644)"),
                    "\(loose.stderr)")
                // A wrong password: the delivery fails naming the step and the relay's answer.
                #expect(chmod(password, 0o600) == 0)
                let refused = try site.admin(["alerts", "test"])
                #expect(refused.status != 0)
                #expect(refused.stderr.contains("AUTH PLAIN: the server answered 535"), "\(refused.stderr)")
                passed = true
            }
        }
    }

    /// A dead hub's alerts die with it: an agent that has no answer from the hub for
    /// `hub_silent_after` sends one notice through its own `[notify]` command, and one when the
    /// hub answers again (issue 15, item 4).
    @Test func anAgentTellsOnceThatTheHubIsSilentAndOnceThatItIsBack() async throws {
        try await blocking {
            try withTemporaryDirectory("hub-silent") { dir in
                let outbox = dir.file("outbox")
                try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
                let sendmail = dir.file("sendmail")
                try "#!/bin/sh\ncat > \(outbox)/mail-$(date +%s%N).txt\n".write(
                    toFile: sendmail, atomically: true, encoding: .utf8)
                #expect(chmod(sendmail, 0o755) == 0)
                func mails(_ text: String) throws -> Int {
                    try FileManager.default.contentsOfDirectory(atPath: outbox).filter {
                        try String(contentsOfFile: outbox + "/" + $0, encoding: .utf8).contains(text)
                    }.count
                }
                let site = try ProcessSite(dir, nodes: [.init("srv1")], coordinatorExtra: "heartbeat_seconds = 1")
                try site.startCoordinator()
                try site.startAgent(
                    "srv1",
                    extra: """

                        [notify]
                        command = [\(SiteConfigFiles.quote(sendmail)), "-t", "-oi"]
                        to = ["ops@example.org"]
                        hub_silent_after = "3s"
                        """)
                try site.waitUntilOnline(1)
                sleep(4)
                #expect(try mails("the hub is silent") == 0, "no notice while the hub answers")
                site.stop("hub", SIGKILL)
                do {
                    try site.waitUntil("the agent's notice", seconds: 30) {
                        try mails("the hub is silent for srv1") == 1
                    }
                } catch {
                    site.printLogs(["agent-srv1.log"])
                    throw error
                }
                let text = try FileManager.default.contentsOfDirectory(atPath: outbox).map {
                    try String(contentsOfFile: outbox + "/" + $0, encoding: .utf8)
                }.joined()
                #expect(text.contains("To: ops@example.org") && text.contains(site.url), "\(text)")
                sleep(3)
                #expect(try mails("the hub is silent for srv1") == 1, "once")
                try site.startCoordinator()
                try site.waitUntil("the hub's return told", seconds: 30) { try mails("answers srv1 again") == 1 }
            }
        }
    }

    /// The JSON webhook (issue 15, item 5): a receiver on loopback checks each POST's HMAC
    /// signature over its timestamp and body with the shared secret; a secret file others may
    /// read is refused, and that failure is an alert itself.
    @Test func aWebhookReceivesSignedJSONAndAReadableSecretIsRefused() async throws {
        try await blocking {
            try withTemporaryDirectory("webhook") { dir in
                let hooks = dir.file("hooks")
                try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
                let secret = dir.file("webhook.secret")
                try "s3cr3t-\(UUID().uuidString)\n".write(toFile: secret, atomically: true, encoding: .utf8)
                #expect(chmod(secret, 0o600) == 0)
                let receiver = dir.file("receiver.py")
                try """
                import hashlib, hmac, http.server, os, sys
                secret = open(sys.argv[1], 'rb').read().strip()
                out = sys.argv[2]
                class Hook(http.server.BaseHTTPRequestHandler):
                    def do_POST(self):
                        body = self.rfile.read(int(self.headers['Content-Length']))
                        ts = self.headers['X-SCM-Backup-Timestamp']
                        good = 'sha256=' + hmac.new(secret, ts.encode() + b'.' + body, hashlib.sha256).hexdigest()
                        ok = hmac.compare_digest(good, self.headers['X-SCM-Backup-Signature'] or '')
                        name = os.path.join(out, 'hook-%03d.json' % len(os.listdir(out)))
                        with open(name, 'wb') as f:
                            f.write((b'VALID ' if ok else b'FORGED ') + body)
                        self.send_response(204 if ok else 401)
                        self.end_headers()
                server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
                print('port', server.server_address[1], flush=True)
                server.serve_forever()
                """.write(toFile: receiver, atomically: true, encoding: .utf8)
                let (process, port) = try Self.server([receiver, secret, hooks], log: dir.file("receiver.log"))
                defer { _ = process.stop(SIGKILL) }
                let urlFile = dir.file("webhook.url")
                try "http://127.0.0.1:\(port)/hook\n".write(toFile: urlFile, atomically: true, encoding: .utf8)
                let site = try ProcessSite(dir, nodes: [.init("srv1")], coordinatorExtra: "heartbeat_seconds = 1")
                site.siteTables = """
                    [alerts]
                    agent_silent_after = "3s"
                    evaluate_seconds = 1
                    [alerts.webhook]
                    url_file = \(SiteConfigFiles.quote(urlFile))
                    secret_file = \(SiteConfigFiles.quote(secret))
                    """
                try site.startCoordinator()
                try site.startAgent("srv1")
                try site.waitUntilOnline(1)
                site.stop("srv1", SIGKILL)
                func posts(_ text: String) throws -> [String] {
                    try FileManager.default.contentsOfDirectory(atPath: hooks).sorted().map {
                        try String(contentsOfFile: hooks + "/" + $0, encoding: .utf8)
                    }.filter { $0.contains(text) }
                }
                try site.waitUntil("the webhook's POST", seconds: 30) {
                    try !posts("\"agent-silent\"").filter {
                        $0.contains("\"firing\"") && $0.contains("\"subject\":\"srv1\"")
                    }.isEmpty
                }
                let posted = try posts("\"agent-silent\"")
                #expect(posted.allSatisfy { $0.hasPrefix("VALID ") }, "every POST is signed with the secret: \(posted)")
                #expect(posted.first?.contains("\"format\":\"scm-backup-alert/1\"") == true)
                // A secret others may read is refused before anything is sent, and raised.
                #expect(chmod(secret, 0o644) == 0)
                let before = try FileManager.default.contentsOfDirectory(atPath: hooks).count
                // A notice now, whatever the agent's alerts did meanwhile: the test notice.
                let test = try site.admin(["alerts", "test"])
                #expect(test.status == 1 && test.stderr.contains("readable by group or others"), "\(test.stderr)")
                try site.waitUntil("the webhook's failure raised", seconds: 30) {
                    try site.admin(["alerts"]).stdout.contains("channel-failing  webhook")
                }
                let listed = try site.admin(["alerts"]).stdout
                #expect(listed.contains("readable by group or others"), "\(listed)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: hooks).count == before, "nothing sent")
            }
        }
    }
}
