import AsyncHTTPClient
import BackupCoordinator
import BackupCore
import BackupProtocol
import BackupTesting
import Crypto
import Foundation
import NIOHTTP1
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Plays every attack a live site met — a hostile node, a stolen or foreign certificate, a fake
/// or compromised hub, a flood of idle connections — against a real site on 127.0.0.1 and
/// checks each is refused and that nothing was written. Prints "N cases, N refused, 0 accepted".
@Suite(.serialized, .timeLimit(.minutes(6)))
struct AttackTests {
    /// What each case found.
    final class Verdicts: @unchecked Sendable {
        // Safe: written from the one test task only.
        var rows: [(name: String, refused: Bool, evidence: String)] = []
        func note(_ name: String, refused: Bool, _ evidence: String) {
            rows.append((name, refused, evidence))
            print("attack \(refused ? "refused " : "ACCEPTED") \(name): \(evidence.prefix(300))")
        }
        /// A case refused when its status is `status` and its answer mentions `code`.
        func expect(_ name: String, _ answer: (status: Int, text: String), status: Int, code: String) {
            note(
                name, refused: answer.status == status && answer.text.contains("\"code\":\"\(code)\""),
                "\(answer.status) \(answer.text)")
        }
        /// A case refused at the TLS handshake (no HTTP answer at all).
        func expectHandshakeRefusal(_ name: String, _ answer: (status: Int, text: String)) {
            note(name, refused: answer.status == 0, "\(answer.status) \(answer.text)")
        }
    }

    @Test func everyAttackIsRefusedAndNothingIsWritten() async throws {
        // The attacks run CLI processes and wait for port files between their requests.
        try await onThreadOfItsOwn { try await attacks() }
    }

    private func attacks() async throws {
        try await withTemporaryDirectory("attack") { dir in
            let site = try AttackSite(dir)
            let v = Verdicts()
            try site.startCoordinator()
            try site.startAgent("srv1")
            try site.startAgent("vault")
            let hub = "https://127.0.0.1:\(site.port)"
            let ca = site.pki + "/ca.pem"
            func cert(_ name: String, _ folder: String? = nil) -> (String, String) {
                let f = folder ?? site.certs
                return (f + "/\(name).pem", f + "/\(name).key")
            }
            func call(
                as name: String?, folder: String? = nil, _ method: HTTPMethod, _ url: String,
                headers: [(String, String)] = [], body: [UInt8]? = nil
            ) async throws -> (status: Int, text: String) {
                let (c, k) = name.map { cert($0, folder) } ?? ("", "")
                return try await AttackClient.with(cert: name == nil ? nil : c, key: name == nil ? nil : k, ca: ca) {
                    await AttackClient.send($0, method, url, headers: headers, body: body)
                }
            }
            func json(_ text: String) -> [UInt8] { Array(text.utf8) }

            // The site at work first: a backup of srv1's config, its copy on vault, a second backup.
            let first = try await site.finished(
                try site.submit(["--kind", "backup", "--node", "srv1", "--source", "conf"]))
            #expect(first.state == "succeeded", "\(first)")
            let plan = try site.cli(["transfer", "--from", "srv1", "--to", "vault"])
            #expect(plan.status == 0, "\(plan.stderr)")
            for task in try site.tasks() where task.kind == "transfer" {
                #expect(try await site.finished(task.id).state == "succeeded")
            }
            let second = try await site.finished(
                try site.submit(["--kind", "backup", "--node", "srv1", "--source", "conf"]))
            #expect(second.state == "succeeded")
            let artifacts = try site.artifacts().filter { $0.source == "conf" }
            try #require(artifacts.count == 2)
            let onVault = try #require(artifacts.first { $0.copies.contains { $0.node == "vault" } })
            let notOnVault = try #require(artifacts.first { !$0.copies.contains { $0.node == "vault" } })
            let pathP = onVault.copies[0].path
            let pathQ = notOnVault.copies[0].path
            let vaultPort = try await site.dataPort(of: "vault")
            let data = "https://127.0.0.1:\(vaultPort)/v1/data/"
            let before = try site.artifacts()
            // Every admin request accepted so far is in the audit trail, with the admin's serial.
            let events = try site.cli(["events", "--json"], as: "alice")
            #expect(events.status == 0, "\(events.stderr)")
            let rootSerial = try SiteCA.open(site.pki).issuedCertificates().first { $0.name == "root" }!.serial
            #expect(events.stdout.contains("queued backup task \(first.id) for srv1 (source conf)"), "\(events.stdout)")
            #expect(
                events.stdout.contains("\"POST \\/v1\\/transfers\"") || events.stdout.contains("POST /v1/transfers"))
            #expect(events.stdout.contains(rootSerial))

            // MARK: Who may connect at all
            v.expectHandshakeRefusal("no client certificate", try await call(as: nil, .GET, hub + "/v1/nodes"))
            v.expectHandshakeRefusal(
                "a certificate of another CA",
                try await call(as: "root", folder: dir.file("other-certs"), .GET, hub + "/v1/nodes"))
            v.expectHandshakeRefusal(
                "an expired certificate",
                try await call(as: "srv1-old", .POST, hub + "/v1/tasks/lease", body: json(#"{"waitSeconds":0}"#)))
            v.expect(
                "a revoked agent certificate",
                try await call(as: "rogue", .POST, hub + "/v1/agents/register", body: json(Self.register)), status: 403,
                code: "certificate-revoked")
            v.expectHandshakeRefusal(
                "no client certificate at a data port", try await call(as: nil, .HEAD, data + pathP))

            // MARK: Roles and nodes
            v.expect(
                "an operator submits a task",
                try await call(
                    as: "alice", .POST, hub + "/v1/tasks", body: json(#"{"kind":"inventory","node":"srv1"}"#)),
                status: 403, code: "wrong-role")
            v.expect(
                "an agent lists nodes", try await call(as: "srv1", .GET, hub + "/v1/nodes"), status: 403,
                code: "wrong-role")
            v.expect(
                "an admin certificate registers as an agent",
                try await call(as: "root", .POST, hub + "/v1/agents/register", body: json(Self.register)), status: 403,
                code: "wrong-role")
            for (what, method, path, body) in [
                ("registers", HTTPMethod.POST, "/v1/agents/register", Self.register),
                (
                    "reports copies", .POST, "/v1/agents/copies",
                    Self.copies(pathP, sha256: String(repeating: "e", count: 64))
                ),
                ("leases a task", .POST, "/v1/tasks/lease", #"{"waitSeconds":0}"#),
                ("reports a result", .POST, "/v1/tasks/1/result", #"{"fencingToken":1}"#),
            ] {
                v.expect(
                    "a node outside the site \(what)",
                    try await call(as: "stranger", method, hub + path, body: json(body)),
                    status: 403, code: "unknown-node")
            }

            // MARK: The catalog believes only what it authorised
            let future = Self.copies(pathQ, sha256: notOnVault.sha256 ?? "", verifiedAt: "2099-01-01T00:00:00Z")
            _ = try await call(as: "vault", .POST, hub + "/v1/agents/copies", body: json(future))
            let afterClaim = try site.artifacts().first { $0.copies.contains { $0.path == pathQ } }
            v.note(
                "a backup node claims an intact copy it never received, verified in 2099",
                refused: afterClaim?.copies.contains { $0.node == "vault" } == false,
                "\(afterClaim?.copies.map { "\($0.node):\($0.state)" } ?? [])")
            let futurePath = pathQ.replacingOccurrences(of: "/conf-", with: "/conf-future-")
                .replacingOccurrences(of: "/2026/", with: "/2099/")
            _ = try await call(
                as: "vault", .POST, hub + "/v1/agents/copies",
                body: json(Self.copies(futurePath, sha256: String(repeating: "e", count: 64))))
            v.note(
                "a backup node pre-reports a future artifact with a wrong digest",
                refused: try !site.artifacts().contains { $0.copies.contains { $0.path == futurePath } }, futurePath)
            let quarantined = Self.copies(pathP, sha256: onVault.sha256 ?? "", state: "quarantined")
            _ = try await call(as: "stray", .POST, hub + "/v1/agents/copies", body: json(quarantined))
            try await Task.sleep(for: .seconds(1))
            v.note(
                "an unpaired node reports a quarantined copy to get a repair pushed to it",
                refused: try !site.tasks().contains {
                    $0.kind == "transfer" && $0.node == "srv1" && $0.state != "succeeded"
                }
                    && !site.artifacts().contains { $0.copies.contains { $0.node == "stray" } }, "no repair, no copy")
            v.expect(
                "a transfer to a node no pairing joins",
                try await call(as: "root", .POST, hub + "/v1/transfers", body: json(#"{"from":"srv1","to":"stray"}"#)),
                status: 422, code: "not-paired")
            // A task leased to `stray` (no agent of its own runs): others and old tokens get nowhere.
            _ = try await call(as: "stray", .POST, hub + "/v1/agents/register", body: json(Self.register))
            let strayTask = try site.submit(["--kind", "inventory", "--node", "stray"])
            let lease = try await call(as: "stray", .POST, hub + "/v1/tasks/lease", body: json(#"{"waitSeconds":5}"#))
            let token = try JSONDecoder().decode(LeaseAnswer.self, from: Data(lease.text.utf8)).task?.fencingToken ?? 0
            v.expect(
                "a stale fencing token renews a lease",
                try await call(
                    as: "stray", .POST, hub + "/v1/tasks/\(strayTask)/renew",
                    body: json(#"{"fencingToken":\#(token - 1),"progressed":true}"#)),
                status: 409, code: "stale-fencing-token")
            v.expect(
                "another node renews a lease it does not hold",
                try await call(
                    as: "vault", .POST, hub + "/v1/tasks/\(strayTask)/renew",
                    body: json(#"{"fencingToken":\#(token),"progressed":true}"#)),
                status: 409, code: "not-lease-holder")
            v.expect(
                "another node reports a task's result",
                try await call(
                    as: "vault", .POST, hub + "/v1/tasks/\(strayTask)/result",
                    body: json(
                        #"{"fencingToken":\#(token),"detail":"done","artifacts":\#(Self.copies(pathP, sha256: String(repeating: "e", count: 64)))}"#
                    )),
                status: 409, code: "not-lease-holder")
            v.expect(
                "a result for a finished task",
                try await call(
                    as: "srv1", .POST, hub + "/v1/tasks/\(first.id)/result", body: json(#"{"fencingToken":1}"#)),
                status: 409, code: "task-finished")

            // MARK: Bodies and paths
            v.expect(
                "an oversized body",
                try await call(
                    as: "srv1", .POST, hub + "/v1/agents/heartbeat", body: Array(repeating: 0x20, count: (1 << 20) + 1)),
                status: 413, code: "body-too-large")
            v.expect(
                "a deeply nested body",
                try await call(
                    as: "srv1", .POST, hub + "/v1/agents/heartbeat",
                    body: json(String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))),
                status: 400, code: "malformed-json")
            v.expect(
                "a purge naming a path with ..",
                try await call(
                    as: "root", .POST, hub + "/v1/tasks",
                    body: json(#"{"kind":"purge","node":"vault","artifacts":["../../etc/passwd"]}"#)),
                status: 422, code: "unknown-artifact")
            v.expect(
                "an unknown API version", try await call(as: "alice", .GET, hub + "/v9/nodes"), status: 404,
                code: "unsupported-version")

            // MARK: What the hub may make an agent do
            var trimmed = try await site.finished(
                try site.submit(["--kind", "backup", "--node", "srv1", "--source", "trimmed"]))
            v.note(
                "the hub names a pre-backup step the agent does not define",
                refused: trimmed.state == "failed" && trimmed.lastError?.contains("does not define") == true,
                trimmed.lastError ?? trimmed.state)
            try site.writeSiteFile(
                dir.file("argv-site.toml"), trimmedStep: #"pre_backup = ["/bin/sh", "-c", "id > owned"]"#)
            let argv = try Command.scmBackup(["coordinator", "--config", dir.file("argv-site.toml"), "--check"])
            v.note(
                "a site file gives a pre-backup command for the agent to run",
                refused: argv.status == 1 && argv.stderr.contains("the site names a step"), argv.stderr)
            trimmed = try await site.finished(
                try site.submit(["--kind", "backup", "--node", "srv1", "--source", "escape"]))
            v.note(
                "a source that is a symlink out of source_roots",
                refused: trimmed.state == "failed"
                    && trimmed.lastError?.contains("outside this node's source_roots") == true,
                trimmed.lastError ?? trimmed.state)
            v.note(
                "nothing of the escape's target reached a store",
                refused: try !site.artifacts().contains { $0.source == "escape" }, "no artifact of 'escape'")

            // MARK: Tickets at the data port
            let ticketKey = try Ed25519PEM.readPrivateKey(site.pki + "/ticket-signing.key")
            func ticket(
                _ path: String, sender: String = "srv1", receiver: String = "vault", task: Int64 = 9001,
                token: UInt64 = 5, expiresIn: TimeInterval = 60, key: Curve25519.Signing.PrivateKey? = nil,
                sha256: String? = nil, size: Int64? = nil
            ) throws -> String {
                let artifact = path == pathQ ? notOnVault : onVault
                return try TransferTicket(
                    epoch: "00000000000000000000000000000000", taskId: task, fencingToken: token, purpose: .transfer,
                    path: path, sha256: sha256 ?? artifact.sha256, md5: nil, size: size ?? artifact.size,
                    sender: sender,
                    receiver: receiver, expiresAt: Date().addingTimeInterval(expiresIn),
                    facts: .init(origin: "srv1", kind: "folder", source: "conf", revision: nil, created: nil)
                ).signed(with: key ?? ticketKey)
            }
            let bytesQ = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("store-srv1/" + pathQ))))
            func put(as who: String, _ path: String, _ ticket: String?) async throws -> (status: Int, text: String) {
                try await call(
                    as: who, .PUT, data + path,
                    headers: (ticket.map { [("SCM-Ticket", $0)] } ?? [])
                        + [("Content-Type", "application/gzip")], body: bytesQ)
            }
            v.expect("a PUT without a ticket", try await put(as: "srv1", pathQ, nil), status: 401, code: "no-ticket")
            v.expect(
                "a forged ticket", try await put(as: "srv1", pathQ, try ticket(pathQ, key: .init())), status: 403,
                code: "ticket-forged")
            v.expect(
                "an expired ticket", try await put(as: "srv1", pathQ, try ticket(pathQ, expiresIn: -3600)), status: 403,
                code: "ticket-expired")
            v.expect(
                "a ticket for another receiver",
                try await put(as: "srv1", pathQ, try ticket(pathQ, receiver: "stray")), status: 403,
                code: "ticket-misaddressed")
            v.expect(
                "a ticket stolen by another node", try await put(as: "stray", pathQ, try ticket(pathQ)), status: 403,
                code: "ticket-wrong-peer")
            v.expect(
                "a ticket for another artifact", try await put(as: "srv1", pathQ, try ticket(pathP)), status: 403,
                code: "ticket-other-artifact")
            let dotdot = "srv1/folder/conf/2026/01/01/000000/../../../../../../../x.tar.gz"
            v.expect(
                "a path with ..", try await put(as: "srv1", dotdot, try ticket(dotdot)), status: 400, code: "bad-path")
            // A ticket used once is spent, across a restart of the receiver, even after a purge.
            let used = try ticket(pathQ)
            let legit = try await put(as: "srv1", pathQ, used)
            #expect(legit.status == 200, "\(legit)")
            let received = dir.file("store-vault/" + pathQ)
            try FileManager.default.removeItem(atPath: received)
            try FileManager.default.removeItem(atPath: received + ".dna")
            site.stopAgent("vault")
            try site.startAgent("vault")
            let newPort = try site.localDataPort("vault")
            try await Task.sleep(for: .seconds(2))
            let replay = try await call(
                as: "srv1", .PUT, "https://127.0.0.1:\(newPort)/v1/data/" + pathQ,
                headers: [("SCM-Ticket", used), ("Content-Type", "application/gzip")], body: bytesQ)
            v.note(
                "a spent ticket replayed after the receiver restarted and the copy was purged",
                refused: replay.status == 409 && replay.text.contains("ticket-used")
                    && !FileManager.default.fileExists(atPath: received),
                "\(replay.status) \(replay.text)")
            let stale = try await call(
                as: "srv1", .PUT, "https://127.0.0.1:\(newPort)/v1/data/" + pathQ,
                headers: [("SCM-Ticket", try ticket(pathQ, token: 4)), ("Content-Type", "application/gzip")],
                body: bytesQ)
            v.expect("a ticket of an older lease of the task", stale, status: 409, code: "ticket-stale")

            // MARK: Slow and many connections, without a certificate
            let idle = Self.openIdle(port: site.port, count: 40)
            try await Task.sleep(for: .seconds(4))
            let stillOpen = idle.filter(Self.isOpen).count
            v.note(
                "idle TCP connections that never start TLS are closed after the handshake timeout",
                refused: stillOpen == 0, "\(stillOpen) of \(idle.count) still open after 4 s")
            idle.forEach { close($0) }
            let flood = Self.openIdle(port: site.port, count: 40)
            try await Task.sleep(for: .milliseconds(500))
            let closedAtOnce = flood.filter { !Self.isOpen($0) }.count
            v.note(
                "more connections from one address than the per-address cap",
                refused: closedAtOnce >= 40 - 16, "\(closedAtOnce) of 40 closed at once (cap 16)")
            let served = try site.cli(["nodes"], as: "alice")
            v.note("a flood does not lock out a real client", refused: served.status == 0, served.stderr)
            flood.forEach { close($0) }

            // A peer with a valid certificate that completes TLS and then dribbles a head.
            let slowHead = try site.secondsUntilHungUp(
                as: "alice", port: site.port, partial: "GET /v1/nodes HTTP/1.1\r\n")
            v.note(
                "a request head that never ends, after a good handshake",
                refused: slowHead.map { $0 < 8 } ?? false, slowHead.map { "hung up after \($0) s" } ?? "still open")
            let silent = try site.secondsUntilHungUp(as: "srv1", port: newPort, partial: "")
            v.note(
                "a data-port peer that completes TLS and sends nothing",
                refused: silent.map { $0 < 8 } ?? false, silent.map { "hung up after \($0) s" } ?? "still open")

            // MARK: Control characters in what an agent says
            _ = try await call(
                as: "stray", .POST, hub + "/v1/agents/register",
                body: json(Self.register.replacingOccurrences(of: "\"1.0\"", with: #""1.0\u001b[2J\nFAKE LOG LINE""#)))
            let listed = try site.nodes().first { $0.name == "stray" }?.version ?? ""
            v.note(
                "control characters in an agent's version reach the catalog and the CLI",
                refused: !listed.contains("\u{1b}") && !listed.contains("\n") && listed.contains("\\u{1b}"), listed)

            // MARK: The catalog is the owner's only
            let mode = try FileSystem.linkStatus(dir.file("catalog.sqlite"))!.st_mode & 0o777
            v.note("the catalog is readable by others", refused: mode == 0o600, String(mode, radix: 8))

            // MARK: A purge of a copy whose bytes changed quarantines it
            let srv1Copy = dir.file("store-srv1/" + pathP)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: srv1Copy)))
            bytes[bytes.count / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: srv1Copy))
            let purge = try await site.finished(
                try site.submit(["--kind", "purge", "--node", "srv1", "--artifact", pathP]))
            let quarantinedCopy = dir.file("store-srv1/.quarantine/" + pathP)
            v.note(
                "a purge order whose copy no longer matches deletes it",
                refused: purge.state == "succeeded" && FileManager.default.fileExists(atPath: quarantinedCopy),
                purge.detail ?? purge.lastError ?? purge.state)

            // MARK: Revocation holds with the hub down
            site.coordinator?.stop()
            site.stopAgent("vault")
            try site.startAgent("vault", coordinator: "https://127.0.0.1:1")
            var alone = try site.localDataPort("vault")
            let revoked = try await call(
                as: "rogue", .PUT, "https://127.0.0.1:\(alone)/v1/data/" + pathQ,
                headers: [("SCM-Ticket", try ticket(pathQ, sender: "rogue", task: 9002))], body: bytesQ)
            v.expect(
                "a revoked node's PUT to a data port restarted while the hub is unreachable", revoked, status: 403,
                code: "certificate-revoked")
            site.stopAgent("vault")
            try FileManager.default.removeItem(atPath: dir.file("store-vault/.scm-backup-revoked"))
            try site.startAgent("vault", coordinator: "https://127.0.0.1:1")
            alone = try site.localDataPort("vault")
            let blind = try await call(
                as: "srv1", .PUT, "https://127.0.0.1:\(alone)/v1/data/" + pathQ,
                headers: [("SCM-Ticket", try ticket(pathQ, task: 9003))], body: bytesQ)
            v.expect("a data port that holds no revocation list", blind, status: 503, code: "no-revocation-list")
            v.note(
                "nothing was received while refusing", refused: !FileManager.default.fileExists(atPath: received),
                received)
            site.stopAgent("vault")

            // MARK: Fake hubs
            try await Self.fakeHubs(site, v)

            // Nothing the attackers said put a copy in the catalog on a node that does not hold one.
            try site.startCoordinator()
            let intruded = try site.artifacts().flatMap(\.copies).filter {
                ["stray", "stranger", "rogue"].contains($0.node)
            }
            v.note(
                "the catalog lists no copy on an attacker's node", refused: intruded.isEmpty, "\(intruded.map(\.path))")
            v.note(
                "the catalog kept every artifact it had before the attacks",
                refused: Set(before.map(\.sha256)).isSubset(of: Set(try site.artifacts().map(\.sha256))),
                "\(before.count) artifacts")
            let accepted = v.rows.filter { !$0.refused }
            print(
                "attack suite: \(v.rows.count) cases, \(v.rows.count - accepted.count) refused, \(accepted.count) accepted"
            )
            #expect(accepted.isEmpty, "accepted: \(accepted.map(\.name))")
        }
    }

    struct LeaseAnswer: Decodable {
        struct Task: Decodable { var fencingToken: UInt64 }
        var task: Task?
    }

    static let register =
        #"{"version":"1.0","storePath":"/s","diskTotal":1,"diskFree":1,"kinds":["folder"]}"#

    static func copies(_ path: String, sha256: String, state: String = "intact", verifiedAt: String? = nil) -> String {
        let parts = path.split(separator: "/").map(String.init)
        let stamp = parts[3...6].joined(separator: "/")
        return """
            {"complete":false,"copies":[{"path":"\(path)","origin":"\(parts[0])","kind":"\(parts[1])","source":"\(parts[2])",\
            "stamp":"\(stamp)","size":100,"sha256":"\(sha256)","state":"\(state)"\(verifiedAt.map { ",\"verifiedAt\":\"\($0)\"" } ?? "")}]}
            """
    }

    /// Opens `count` TCP connections to 127.0.0.1:`port` that send nothing.
    static func openIdle(port: Int, count: Int) -> [Int32] {
        (0..<count).compactMap { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if ok != 0 {
                close(fd)
                return nil
            }
            return fd
        }
    }

    /// Whether the server still holds `fd`'s connection open (no EOF or reset waiting).
    static func isOpen(_ fd: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }
}

extension AttackTests {
    /// Two fake hubs, in process: one presenting a backup node's agent certificate (the agent
    /// must not even register), one with the real hub's certificate but not its purge key (the
    /// agent must delete nothing).
    static func fakeHubs(_ site: AttackSite, _ v: Verdicts) async throws {
        let dir = site.dir
        let copyQ = try #require(
            try Store(root: dir.file("store-srv1")).scan().artifacts.compactMap(\.location).first {
                FileManager.default.fileExists(atPath: dir.file("store-srv1/" + $0.relativePath))
            })
        try await serveFake(site, name: "impostor", certificate: "vault") { port, catalog in
            try site.startAgent(
                "srv1", coordinator: "https://127.0.0.1:\(port)", log: dir.file("agent-srv1-impostor.log"))
            var log = ""
            for _ in 0..<60 where !log.contains("not that of coordinator") {
                try await Task.sleep(for: .milliseconds(500))
                log = site.agents["srv1"]?.output ?? ""
            }
            let registered = try await catalog.nodes(now: Date(), onlineWithin: 600)
            v.note(
                "a fake hub presenting a backup node's agent certificate",
                refused: registered.isEmpty && log.contains("not that of coordinator 'hub'"),
                "registered: \(registered.map(\.name)); log: \(log.split(separator: "\n").last?.suffix(300) ?? "")")
            site.stopAgent("srv1")
        }
        let attackerKey = dir.file("attacker-purge.key")
        try FileSystem.writeAtomically(
            Array(Ed25519PEM.privateKey(Curve25519.Signing.PrivateKey()).utf8), to: attackerKey, mode: 0o600)
        try await serveFake(site, name: "no-purge-key", certificate: "hub", purgeKey: attackerKey) { port, catalog in
            let dna = try DNA.decode(
                try FileSystem.readSmallFile(dir.file("store-srv1/" + copyQ.relativePath + ".dna")), path: "dna")
            try await catalog.record(
                ArtifactReport(
                    complete: false,
                    copies: [
                        CopyReport(
                            path: copyQ.relativePath, origin: "srv1", kind: "folder", source: "conf",
                            stamp: copyQ.stamp,
                            size: dna.size, sha256: dna.sha256, md5: nil, revision: dna.revision, created: dna.created,
                            state: .intact)
                    ]), node: "srv1", authority: .originBackup(sources: ["conf"]), now: Date())
            let task = try await catalog.submit(
                SubmitTaskRequest(kind: .purge, node: "srv1", artifacts: [copyQ.relativePath]), now: Date())
            try site.startAgent("srv1", coordinator: "https://127.0.0.1:\(port)", log: dir.file("agent-srv1-fake.log"))
            var ended: TaskInfo?
            for _ in 0..<150 {
                if let t = try await catalog.tasks().first(where: { $0.id == task.id }),
                    t.state == .failed || t.state == .succeeded || t.attempts > 1
                {
                    ended = t
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            site.stopAgent("srv1")
            let kept = FileManager.default.fileExists(atPath: dir.file("store-srv1/" + copyQ.relativePath))
            v.note(
                "a hub without the purge key orders a purge",
                refused: kept && ended?.lastError?.contains("order-forged") == true,
                "kept: \(kept); \(ended?.lastError ?? ended?.state.rawValue ?? "no result")")
        }
    }

    /// Runs `body` while a coordinator with `certificate`'s identity serves the site's file on
    /// a port of its own, with a catalog of its own.
    static func serveFake(
        _ site: AttackSite, name: String, certificate: String, purgeKey: String? = nil,
        _ body: (Int, Catalog) async throws -> Void
    ) async throws {
        var config = try CoordinatorConfiguration.load(site.dir.file("site.toml"))
        config.port = 0
        config.certificate = site.certs + "/\(certificate).pem"
        config.privateKey = site.certs + "/\(certificate).key"
        config.database = site.dir.file("fake-\(name).sqlite")
        if let purgeKey { config.purgeKey = purgeKey }
        let catalog = try Catalog(path: config.database)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try CoordinatorServer.makeApplication(config, catalog: catalog) { continuation.yield($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            do { try await body(port, catalog) } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }
}
