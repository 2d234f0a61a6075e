import AsyncHTTPClient
import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// The site under attack: a coordinator and two agents as real processes on 127.0.0.1 —
/// `srv1` (a server with sources) and `vault` (a backup node with a data port, paired with
/// srv1) — configured nodes that play hostile parts (`stray`, a backup node paired with no one;
/// `rogue`, whose certificate is revoked), and certificates the site never configured
/// (`stranger`), of another CA, and expired.
final class AttackSite: @unchecked Sendable {
    // Safe: used by one test at a time; the processes are only started and stopped from it.
    let dir: TemporaryDirectory
    let port: Int
    var coordinator: BackgroundProcess?
    var agents: [String: BackgroundProcess] = [:]

    var pki: String { dir.file("pki") }
    var certs: String { dir.file("certs") }

    init(_ dir: TemporaryDirectory) throws {
        self.dir = dir
        port = try Self.freePort()
        let ca = try SiteCA.initialise(at: dir.file("pki"), site: "attack")
        for (name, role) in [
            ("hub", NodeRole.coordinator), ("root", .admin), ("alice", .operator), ("srv1", .agent), ("vault", .agent),
            ("stray", .agent), ("rogue", .agent), ("stranger", .agent),
        ] {
            _ = try ca.issue(name: name, role: role, output: dir.file("certs"))
        }
        // Expired a day ago; and the same name from a CA of its own.
        _ = try ca.issue(
            name: "srv1-old", role: .agent, days: 1, output: dir.file("certs"),
            now: Date().addingTimeInterval(-3 * 86400))
        let other = try SiteCA.initialise(at: dir.file("other-pki"), site: "elsewhere")
        _ = try other.issue(name: "srv1", role: .agent, output: dir.file("other-certs"))
        _ = try other.issue(name: "root", role: .admin, output: dir.file("other-certs"))
        let rogue = try ca.issuedCertificates().first { $0.name == "rogue" }!
        try ca.revoke(serial: rogue.serial)
        // srv1's sources: a config folder; one that is a link out of its roots; one that names a
        // pre-backup step srv1 does not define.
        try FileSystem.makeDirectories(dir.file("scm/conf"))
        try "alice:$apr1$x\n".write(toFile: dir.file("scm/conf/users.conf"), atomically: true, encoding: .utf8)
        try FileSystem.makeDirectories(dir.file("secret"))
        try "root:x:0:0\n".write(toFile: dir.file("secret/shadow"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: dir.file("scm/escape"), withDestinationPath: dir.file("secret"))
        try FileSystem.makeDirectories(dir.file("scm/trimmed"))
    }

    deinit {
        for agent in agents.values { agent.stop(SIGKILL) }
        coordinator?.stop(SIGKILL)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The site file; `preBackup` replaces the `trimmed` source's step line.
    func writeSiteFile(_ path: String, trimmedStep: String = "pre_backup = \"not-defined-here\"") throws {
        let q = SiteConfigFiles.quote
        let text = """
            [coordinator]
            listen = "127.0.0.1:\(port)"
            certificate = \(q(certs + "/hub.pem"))
            key = \(q(certs + "/hub.key"))
            ca = \(q(pki + "/ca.pem"))
            revoked = \(q(pki + "/revoked.json"))
            database = \(q(dir.file("catalog.sqlite")))
            lease_seconds = 10
            retry_seconds = 1
            ticket_key = \(q(pki + "/ticket-signing.key"))
            purge_key = \(q(pki + "/purge-signing.key"))
            handshake_timeout = 2
            head_timeout = 2
            max_connections_per_address = 16

            [nodes.srv1]
            roles = ["server"]
            addresses = ["127.0.0.1"]

            [nodes.srv1.sources.conf]
            kind = "folder"
            path = \(q(dir.file("scm/conf")))

            [nodes.srv1.sources.escape]
            kind = "folder"
            path = \(q(dir.file("scm/escape")))

            [nodes.srv1.sources.trimmed]
            kind = "folder"
            path = \(q(dir.file("scm/trimmed")))
            \(trimmedStep)

            [nodes.vault]
            roles = ["backup"]
            addresses = ["127.0.0.1"]

            [nodes.stray]
            roles = ["backup"]
            addresses = ["127.0.0.1"]

            [nodes.rogue]
            roles = ["server"]
            addresses = ["127.0.0.1"]

            [[pairings]]
            server = "srv1"
            backup = "vault"

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func startCoordinator() throws {
        try? FileManager.default.removeItem(atPath: dir.file("port"))  // A port file of an earlier start.
        try writeSiteFile(dir.file("site.toml"))
        coordinator = try BackgroundProcess(
            Paths.scmBackupBinary, ["coordinator", "--config", dir.file("site.toml"), "--port-file", dir.file("port")],
            log: dir.file("coordinator.log"))
        _ = try BackgroundProcess.waitForFile(dir.file("port"))
    }

    /// Starts `name`'s agent (srv1 or vault) against `url` (default: the real coordinator).
    func startAgent(_ name: String, coordinator url: String? = nil, log: String? = nil) throws {
        let file = dir.file("agent-\(name).toml")
        try SiteConfigFiles.writeAgent(
            file, coordinator: url ?? "https://127.0.0.1:\(port)", name: name, certs: certs, pki: pki,
            store: dir.file("store-\(name)"), sourceRoots: [dir.file("scm")], dataPort: name == "vault",
            extra: "handshake_timeout = 2\nhead_timeout = 2\nmax_connections_per_address = 16")
        try? FileManager.default.removeItem(atPath: dir.file("data-port-\(name)"))  // One of an earlier start.
        agents[name] = try BackgroundProcess(
            Paths.scmBackupBinary, ["agent", "--config", file, "--data-port-file", dir.file("data-port-\(name)")],
            log: log ?? dir.file("agent-\(name).log"))
    }

    /// Connects with `who`'s certificate through `openssl s_client`, sends `partial` (a request
    /// head without its blank line) and then nothing; returns how long until the server hung up,
    /// or nil when it still had not after `seconds`.
    func secondsUntilHungUp(as who: String, port: Int, partial: String, seconds: Double = 10) throws -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ToolRunner.resolve("openssl"))
        process.arguments = [
            "s_client", "-quiet", "-connect", "127.0.0.1:\(port)", "-cert", certs + "/\(who).pem", "-key",
            certs + "/\(who).key", "-CAfile", pki + "/ca.pem",
        ]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let started = Date()
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        try input.fileHandleForWriting.write(contentsOf: Data(partial.utf8))
        while Date().timeIntervalSince(started) < seconds {
            if !process.isRunning { return Date().timeIntervalSince(started) }
            usleep(100_000)
        }
        return nil
    }

    /// The data port `name`'s agent wrote to its port file.
    func localDataPort(_ name: String) throws -> Int {
        guard let port = Int(try BackgroundProcess.waitForFile(dir.file("data-port-\(name)"))) else {
            throw AttackError("\(name)'s data port file holds no port")
        }
        return port
    }

    func stopAgent(_ name: String) {
        agents[name]?.stop()
        agents[name] = nil
    }

    /// Runs the CLI as `who` (an admin or operator certificate name).
    func cli(_ args: [String], as who: String = "root") throws -> CommandResult {
        try Command.scmBackup(
            args + [
                "--coordinator", "https://127.0.0.1:\(port)", "--ca", pki + "/ca.pem", "--cert", certs + "/\(who).pem",
                "--key", certs + "/\(who).key",
            ])
    }

    struct TaskRow: Decodable {
        var id: Int64
        var kind: String
        var node: String
        var state: String
        var lastError: String?
        var detail: String?
    }

    func tasks() throws -> [TaskRow] {
        try JSONDecoder().decode([TaskRow].self, from: Data(try cli(["tasks", "list", "--json"]).stdout.utf8))
    }

    /// Waits until task `id` has ended; returns it. It sleeps between looks without holding a
    /// thread of the cooperative pool (the other suites run beside this one).
    func finished(_ id: Int64, seconds: Double = 60) async throws -> TaskRow {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let task = try tasks().first(where: { $0.id == id }),
                ["succeeded", "failed", "cancelled"].contains(task.state)
            {
                return task
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw AttackError("task \(id) did not end within \(Int(seconds)) s")
    }

    func submit(_ args: [String]) throws -> Int64 {
        let r = try cli(["tasks", "submit", "--json"] + args)
        guard r.status == 0 else { throw AttackError("tasks submit \(args): \(r.stderr)") }
        struct Row: Decodable { var id: Int64 }
        return try JSONDecoder().decode(Row.self, from: Data(r.stdout.utf8)).id
    }

    struct Copy: Decodable {
        var node: String
        var path: String
        var state: String
        var verifiedAt: String?
    }
    struct Artifact: Decodable {
        var source: String
        var sha256: String?
        var size: Int64
        var confirmed: Bool?
        var copies: [Copy]
    }

    func artifacts() throws -> [Artifact] {
        try JSONDecoder().decode([Artifact].self, from: Data(try cli(["artifacts", "--json"]).stdout.utf8))
    }

    struct Node: Decodable {
        var name: String
        var version: String?
        var dataPort: Int?
    }

    func nodes() throws -> [Node] {
        try JSONDecoder().decode([Node].self, from: Data(try cli(["nodes", "--json"]).stdout.utf8))
    }

    /// Waits for `name`'s registered data port.
    func dataPort(of name: String, seconds: Double = 30) async throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let port = try nodes().first(where: { $0.name == name })?.dataPort { return port }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw AttackError("\(name) registered no data port")
    }
}

struct AttackError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An HTTPS client with a certificate of the attacker's choosing (or none), for raw requests.
enum AttackClient {
    static func with<T>(
        cert: String?, key: String?, ca: String, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        // The attacker dials by address and does not care who answers.
        try await TestClient.with(
            cert: cert, key: key, ca: ca, httpVersion: .http1Only,
            timeout: .init(connect: .seconds(3), read: .seconds(20)), body)
    }

    /// Sends a request; a connection refused by TLS gives status 0 with the error as text.
    static func send(
        _ client: HTTPClient, _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async -> (status: Int, text: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if !headers.contains(where: { $0.0 == "Content-Type" }) {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: TestClient.requestTimeout)
            let text = try await response.body.collect(upTo: 4 << 20)
            return (Int(response.status.code), String(buffer: text))
        } catch {
            return (0, "\(error)")
        }
    }
}
