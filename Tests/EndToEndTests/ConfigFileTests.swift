import BackupTesting
import Foundation
import Testing

/// The hub's and the agents' TOML files: a good one passes `--check`; an unknown key, an
/// impossible value or a syntax error stops start-up with the file, the line and the key.
@Suite(.timeLimit(.minutes(2)))
struct ConfigFileTests {
    static let good = """
        [coordinator]
        listen = "127.0.0.1:0"
        certificate = "certs/hub.pem"
        key = "certs/hub.key"
        ca = "pki/ca.pem"
        database = "catalog.sqlite"
        lease_seconds = 60

        [nodes.srv1]
        roles = ["server", "hub"]
        addresses = ["srv1.example.org", "10.0.0.1"]

        [nodes.srv1.sources.env]
        kind = "svn"
        path = "/var/scm/repos/env"
        verify_snapshot = true

        [nodes.srv1.sources.env-trac]
        kind = "trac"
        path = "/var/scm/tracs/env"
        svn_source = "env"

        [nodes.vault]
        roles = ["backup"]
        addresses = ["vault.example.org"]

        [[pairings]]
        server = "srv1"
        backup = "vault"
        direction = "pull"

        """

    /// Makes a CA in `dir/pki` and issues certificates into `certs` (named by role).
    static func makePKI(_ dir: TemporaryDirectory, certs: String, _ names: [(String, String)]) throws {
        let pki = dir.file("pki")
        if !FileManager.default.fileExists(atPath: pki + "/ca.pem") {
            #expect(try Command.scmBackup(["pki", "init", "--dir", pki, "--site", "test"]).status == 0)
        }
        for (name, role) in names {
            let r = try Command.scmBackup([
                "pki", "issue", "--dir", pki, "--name", name, "--role", role, "--out", certs,
            ])
            #expect(r.status == 0, "\(r.stderr)")
        }
    }

    /// Writes `text` as `site.toml` beside a real PKI and runs `coordinator --check` on it.
    func check(_ dir: TemporaryDirectory, _ text: String) throws -> CommandResult {
        if !FileManager.default.fileExists(atPath: dir.file("certs/hub.pem")) {
            try Self.makePKI(dir, certs: dir.file("certs"), [("hub", "coordinator")])
        }
        try text.write(toFile: dir.file("site.toml"), atomically: true, encoding: .utf8)
        return try Command.scmBackup(["coordinator", "--config", dir.file("site.toml"), "--check"])
    }

    @Test func aGoodSiteFilePassesTheCheck() async throws {
        try await blocking {
            try withTemporaryDirectory("config-good") { dir in
                let r = try check(dir, Self.good)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.contains("ok: 2 nodes, 2 sources, 1 pairings; listens on 127.0.0.1:0"))
            }
        }
    }

    @Test(arguments: [
        // (what to replace, with what, the line, key and message expected)
        (
            "roles = [\"server\", \"hub\"]", "rols = [\"server\"]",
            "site.toml:9: nodes.srv1.roles: a node needs at least one role"
        ),
        (
            "lease_seconds = 60", "lease_seconds = 60\nlease_secs = 5",
            "site.toml:8: coordinator.lease_secs: unknown key"
        ),
        ("kind = \"svn\"", "kind = \"cvs\"", "site.toml:14: nodes.srv1.sources.env.kind: unknown kind 'cvs'"),
        (
            "path = \"/var/scm/repos/env\"", "path = \"var/scm/../env\"",
            "site.toml:15: nodes.srv1.sources.env.path: 'var/scm/../env' must be an absolute path"
        ),
        ("lease_seconds = 60", "lease_seconds = 1", "site.toml:7: coordinator.lease_seconds: 1.0 is outside 5...3600"),
        (
            "lease_seconds = 60",
            "lease_seconds = 60\nself_backup = \"/var/lib/scm-backup/self\"\nself_backup_every = \"10s\"",
            "site.toml:9: coordinator.self_backup_every: '10s' is outside 1 minute...1 day"
        ),
        (
            "lease_seconds = 60", "lease_seconds = 60\ntrusted_signing_keys = [\"nowhere.pub\"]",
            "coordinator.trusted_signing_keys: '"
        ),
        (
            "lease_seconds = 60", "lease_seconds = 60\nself_backup_keep = 3",
            "site.toml:8: coordinator.self_backup_keep: is set, but self_backup (the snapshot folder) is not"
        ),
        (
            "backup = \"vault\"", "backup = \"srv1\"",
            "site.toml:29: pairings[1].backup: 'srv1' is not a node with role 'backup'"
        ),
        (
            "direction = \"pull\"", "direction = \"sideways\"",
            "site.toml:30: pairings[1].direction: 'sideways' is neither push nor pull"
        ),
        (
            "svn_source = \"env\"", "svn_source = \"env-trac\"",
            "site.toml:21: nodes.srv1.sources.env-trac.svn_source: 'env-trac' is not an svn source"
        ),
        (
            "roles = [\"backup\"]", "roles = [\"backup\"]\n[nodes.vault.sources.x]\nkind = \"git\"\npath = \"/x\"",
            "nodes.vault.sources: only a node with role 'server' has sources"
        ),
        (
            "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1\"",
            "site.toml:2: coordinator.listen: '127.0.0.1' is not HOST:PORT"
        ),
        (
            "lease_seconds = 60", "lease_seconds = \"sixty\"",
            "site.toml:7: coordinator.lease_seconds: expected a number, found string"
        ),
        ("[nodes.vault]", "[nodes.vault\n", "site.toml:23:"),
        (
            "[nodes.vault]", "[alerts]\ndisk_free_min = \"10\"\n[nodes.vault]",
            "alerts.disk_free_min: '10' is not a share such as \"10%\""
        ),
        (
            "[nodes.vault]", "[alerts]\nto = [\"ops@example.org\\nBcc: x@y\"]\n[nodes.vault]",
            "alerts.to: 'ops@example.org\\u{a}Bcc: x@y' is not a mail address"
        ),
        (
            "[nodes.vault]", "[alerts.sendmail]\ncommand = [\"sendmail\", \"-t\"]\n[nodes.vault]",
            "alerts.sendmail.command: give the program (an absolute path)"
        ),
        (
            "[nodes.vault]", "[alerts]\ndaily_report = \"7am\"\n[nodes.vault]",
            "alerts.daily_report: '7am' is not a time such as \"07:00\""
        ),
        (
            "[nodes.vault]", "[alerts.heartbeat]\nurl_file = \"heartbeat.url\"\n[nodes.vault]",
            "alerts.heartbeat.url_file: give the absolute path"
        ),
        (
            "[nodes.vault]",
            "[alerts]\nto = [\"ops@example.org\"]\nfrom = \"hub@example.org\"\n[alerts.smtp]\nserver = \"localhost:25\"\nstarttls = false\nusername = \"u\"\npassword_file = \"/etc/hostname\"\n[nodes.vault]",
            "alerts.smtp.username: AUTH without TLS would send the password in clear"
        ),
        (
            "[nodes.vault]", "[alerts.smtp]\nserver = \"localhost:25\"\n[nodes.vault]",
            "alerts.smtp.from: give a sender address (or [alerts] from)"
        ),
        (
            "[nodes.vault]",
            "[dashboard]\nlisten = \"127.0.0.1:8080\"\npassword_file = \"/etc/hostname\"\n[nodes.vault]",
            "dashboard.password_file:"
        ),
        (
            "[nodes.vault]", "[dashboard]\nlisten = \"8080\"\n[nodes.vault]",
            "dashboard.listen: '8080' is not HOST:PORT"
        ),
        (
            "lease_seconds = 60", "lease_seconds = 60\ntask_history_days = 0",
            "site.toml:8: coordinator.task_history_days: 0 is outside 1...36500"
        ),
        (
            "verify_snapshot = true", "verify_snapshot = true\nschedule = \"0 25 * * *\"",
            "site.toml:17: nodes.srv1.sources.env.schedule: the hour field '25' of '0 25 * * *' has 25, outside 0-23"
        ),
        (
            "verify_snapshot = true", "verify_snapshot = true\ntime_zone = \"Europe/Atlantis\"",
            "site.toml:17: nodes.srv1.sources.env.time_zone: 'Europe/Atlantis' is not a time zone"
        ),
        (
            "svn_source = \"env\"", "svn_source = \"env\"\nschedule = \"0 3 * * *\"",
            "nodes.srv1.sources.env-trac.schedule: differs from nodes.srv1.sources.env's"
        ),
        (
            "[nodes.srv1]", "[schedule]\ndefault = \"0 2 * *\"\n\n[nodes.srv1]",
            "site.toml:10: schedule.default: '0 2 * *' has 4 fields"
        ),
        (
            "[nodes.srv1]", "[schedule]\ncatch_up_within = \"a while\"\n\n[nodes.srv1]",
            "site.toml:10: schedule.catch_up_within: 'a while' is not a duration"
        ),
        (
            "lease_seconds = 60", "lease_seconds = 60\nlog_level = \"loud\"",
            "site.toml:8: coordinator.log_level: 'loud' is not one of trace, debug, info, notice, warning, error, critical"
        ),
    ])
    func aBadSiteFileIsRefusedNamingFileLineAndKey(_ replace: String, _ with: String, _ expected: String)
        async throws
    {
        try await blocking {
            try withTemporaryDirectory("config-bad") { dir in
                #expect(Self.good.contains(replace))
                let r = try check(dir, Self.good.replacingOccurrences(of: replace, with: with))
                #expect(r.status == 1, "\(r.stdout)")
                #expect(r.stderr.contains(expected), "\(r.stderr)")
            }
        }
    }

    @Test func anAgentFileIsCheckedToo() async throws {
        try await blocking {
            try withTemporaryDirectory("config-agent") { dir in
                let pki = dir.file("pki")
                try Self.makePKI(dir, certs: dir.file("certs"), [("srv1", "agent"), ("alice", "operator")])
                let file = dir.file("agent.toml")
                try SiteConfigFiles.writeAgent(
                    file, coordinator: "https://127.0.0.1:8443", name: "srv1", certs: dir.file("certs"), pki: pki,
                    store: dir.file("store"), sourceRoots: ["/var/scm"], tools: ["svnadmin": "/usr/bin/svnadmin"])
                let good = try Command.scmBackup(["agent", "--config", file, "--check"])
                #expect(good.status == 0, "\(good.stderr)")
                #expect(good.stdout.contains("ok: node srv1, coordinator https://127.0.0.1:8443"))
                #expect(good.stdout.contains("svn"))

                func refused(_ text: String) throws -> String {
                    try text.write(toFile: file, atomically: true, encoding: .utf8)
                    let r = try Command.scmBackup(["agent", "--config", file, "--check"])
                    #expect(r.status == 1)
                    return r.stderr
                }
                let original = try String(contentsOfFile: file, encoding: .utf8)
                var text = original.replacingOccurrences(
                    of: "svnadmin = \"/usr/bin/svnadmin\"", with: "trac_admin = \"/nowhere/trac-admin\"")
                #expect(
                    try refused(text).contains(
                        "\(file):13: tools.trac_admin: '/nowhere/trac-admin' is not an executable file"))
                text = original.replacingOccurrences(of: "lease_wait_seconds = 2", with: "lease_wait = 2")
                #expect(try refused(text).contains("\(file):7: agent.lease_wait: unknown key"))
                text = original.replacingOccurrences(
                    of: "lease_wait_seconds = 2", with: "lease_wait_seconds = 2\nlog_level = \"chatty\"")
                #expect(try refused(text).contains("\(file):8: agent.log_level: 'chatty' is not one of trace, debug"))
                text = original.replacingOccurrences(
                    of: "lease_wait_seconds = 2", with: "lease_wait_seconds = 2\nrecovery_roots = [\"/var/scm/../etc\"]"
                )
                #expect(
                    try refused(text).contains(
                        "\(file):8: agent.recovery_roots: '/var/scm/../etc' is not an absolute path without '..'"))
                text = original.replacingOccurrences(
                    of: "lease_wait_seconds = 2", with: "lease_wait_seconds = 2\nfallback_min_free = 100")
                #expect(
                    try refused(text).contains("\(file):8: agent.fallback_min_free: 100.0 is outside 0...99 (percent)"))
                text = original + "\n[notify]\ncommand = [\"sendmail\"]\nto = [\"ops@example.org\"]\n"
                #expect(try refused(text).contains("notify.command: give the program (an absolute path)"))
                text = original.replacingOccurrences(of: "srv1.key", with: "srv2.key")
                #expect(
                    try refused(text).contains("\(file):4: agent.key: '\(dir.file("certs/srv2.key"))' does not exist"))
                text = original.replacingOccurrences(of: "srv1.pem", with: "alice.pem")
                #expect(try refused(text).contains("an agent needs an agent certificate"))
                text = original.replacingOccurrences(of: "https://127.0.0.1:8443", with: "http://127.0.0.1:8443")
                #expect(try refused(text).contains("agent.coordinator: 'http://127.0.0.1:8443' is not an https:// URL"))
                // Pre-backup steps are the agent's own: an absolute program, a sane timeout.
                text = original + "\n[pre_backup.trim]\ncommand = [\"sqlite3\", \"{path}/db/trac.db\"]\n"
                #expect(try refused(text).contains("pre_backup.trim.command: 'sqlite3' must be the absolute path"))
                text = original + "\n[pre_backup.trim]\ncommand = [\"/bin/true\"]\ntimeout = 0\n"
                #expect(try refused(text).contains("pre_backup.trim.timeout: 0.0 is outside 1...86400"))
                text = original + "\n[pre_backup.trim]\ncommand = [\"/bin/true\"]\nshell = true\n"
                #expect(try refused(text).contains("pre_backup.trim.shell: unknown key"))
                text = original.replacingOccurrences(of: "[agent]", with: "[agent]\ncoordinator_name = \"../hub\"")
                #expect(try refused(text).contains("agent.coordinator_name:"))
                // A trusted key that is not one is named; a missing one too.
                try "not a key\n".write(toFile: dir.file("new-hub.pub"), atomically: true, encoding: .utf8)
                text = original.replacingOccurrences(
                    of: "[agent]", with: "[agent]\ntrusted_signing_keys = [\"new-hub.pub\"]")
                #expect(
                    try refused(text).contains(
                        "agent.trusted_signing_keys: '\(dir.file("new-hub.pub"))' is not an Ed25519 public key"))
                text = original.replacingOccurrences(
                    of: "[agent]", with: "[agent]\ntrusted_purge_keys = [\"gone.pub\"]")
                #expect(
                    try refused(text).contains(
                        "agent.trusted_purge_keys: '\(dir.file("gone.pub"))' does not exist or cannot be read"))
            }
        }
    }

    @Test func theDeployExamplesPassTheirChecks() async throws {
        try await blocking {
            try withTemporaryDirectory("config-examples") { dir in
                // The site's example names pki/hub.pem and pki/ca.pem beside it: make them.
                try Self.makePKI(dir, certs: dir.file("pki"), [("hub", "coordinator"), ("cms02", "agent")])
                try FileManager.default.copyItem(
                    atPath: Paths.packageRoot + "/deploy/site.example.toml", toPath: dir.file("site.toml"))
                // With the CA's key beside the hub's keys the check fails; the hub gets only its part.
                let withCAKey = try Command.scmBackup(["coordinator", "--config", dir.file("site.toml"), "--check"])
                #expect(withCAKey.status == 1 && withCAKey.stderr.contains("ca.key' is readable beside the hub's keys"))
                try FileManager.default.moveItem(atPath: dir.file("pki/ca.key"), toPath: dir.file("ca.key.offline"))
                let site = try Command.scmBackup(["coordinator", "--config", dir.file("site.toml"), "--check"])
                #expect(site.status == 0, "\(site.stderr)")
                #expect(site.stdout.contains("ok: 3 nodes, 5 sources, 2 pairings"))
                // The agent's example names files in /etc/scm-backup: point it at this folder.
                for name in ["ca.pem", "cms02.pem", "cms02.key", "ticket-signing.pub", "purge-signing.pub"] {
                    try FileManager.default.copyItem(atPath: dir.file("pki/\(name)"), toPath: dir.file(name))
                }
                let example = try String(
                    contentsOfFile: Paths.packageRoot + "/deploy/agent.example.toml", encoding: .utf8)
                try example.replacingOccurrences(of: "/etc/scm-backup/", with: dir.path + "/")
                    .write(toFile: dir.file("agent.toml"), atomically: true, encoding: .utf8)
                let agent = try Command.scmBackup(["agent", "--config", dir.file("agent.toml"), "--check"])
                #expect(agent.status == 0, "\(agent.stderr)")
                #expect(agent.stdout.contains("ok: node cms02, coordinator https://hub.example.org:8443"))
                // `config check` tells the two apart and checks each as its process would.
                let siteCheck = try Command.scmBackup(["config", "check", dir.file("site.toml")])
                #expect(
                    siteCheck.status == 0 && siteCheck.stdout.contains("ok (site file): 3 nodes"), "\(siteCheck.stderr)"
                )
                let agentCheck = try Command.scmBackup(["config", "check", dir.file("agent.toml")])
                #expect(agentCheck.status == 0 && agentCheck.stdout.contains("ok (agent file): node cms02"))
                let text = try String(contentsOfFile: dir.file("site.toml"), encoding: .utf8)
                try text.replacingOccurrences(of: "copies = 1", with: "copies = 2")
                    .write(toFile: dir.file("bad.toml"), atomically: true, encoding: .utf8)
                let bad = try Command.scmBackup(["config", "check", dir.file("bad.toml")])
                #expect(bad.status == 1, "\(bad.stdout)")
                #expect(
                    bad.stderr.contains("bad.toml:")
                        && bad.stderr.contains("nodes.cms02.sources.env.copies: 2 is more than"), "\(bad.stderr)")
                try "[nothing]\n".write(toFile: dir.file("other.toml"), atomically: true, encoding: .utf8)
                let other = try Command.scmBackup(["config", "check", dir.file("other.toml")])
                #expect(other.status == 1 && other.stderr.contains("neither a site file"), "\(other.stderr)")
            }
        }
    }
}
