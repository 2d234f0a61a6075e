import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A whole site as real processes on 127.0.0.1, for end-to-end tests: a site CA and
/// certificates made on the fly with `scm-backup pki`, the hub's and each agent's TOML file, a
/// coordinator that takes its port from port 0 (`--port-file`) and keeps it across restarts,
/// agents (with data ports on port 0 where asked), and the admin CLI. Every process is killed
/// when the site goes away; every file lies under its temporary folder.
public final class ProcessSite: @unchecked Sendable {
    // Safe: a site belongs to one test, which drives it from one thread.
    public let dir: TemporaryDirectory
    /// The coordinator's port, once it started the first time.
    public private(set) var port = 0
    /// The nodes and pairings of the site file, written at each coordinator start.
    public var nodes: [SiteConfigFiles.Node]
    public var pairings: [(server: String, backup: String)]
    /// Lines added to the hub's `[coordinator]` table and after a pairing (by backup node).
    public var coordinatorExtra: String
    /// The `[schedule]` table's lines: off unless a test sets one (tests queue their own tasks).
    public var schedule = "default = \"off\""
    /// More tables of the site file (`[alerts]`, …), written after `[verify]`.
    public var siteTables = ""
    public var pairingExtra: [String: String]
    public var leaseSeconds: Double
    public private(set) var processes: [String: BackgroundProcess] = [:]
    /// Each node's store id, fixed at its first start (its store initialised then, as
    /// `scm-backup init-store` does); a restart keeps it, so a store swapped or emptied since
    /// is refused by the agent as it would be on a real node.
    public private(set) var storeIDs: [String: String] = [:]

    /// Makes the CA and the certificates of `hub` (coordinator), `root` (admin) and one agent
    /// certificate per node.
    public init(
        _ dir: TemporaryDirectory, nodes: [SiteConfigFiles.Node], pairings: [(server: String, backup: String)] = [],
        leaseSeconds: Double = 6, transfers: Bool = false, coordinatorExtra: String = "",
        pairingExtra: [String: String] = [:]
    ) throws {
        self.dir = dir
        self.nodes = nodes
        self.pairings = pairings
        self.leaseSeconds = leaseSeconds
        self.coordinatorExtra =
            coordinatorExtra
            + (transfers ? "\nticket_key = \(SiteConfigFiles.quote(dir.file("pki/ticket-signing.key")))" : "")
        self.pairingExtra = pairingExtra
        try Self.ok(try Command.scmBackup(["pki", "init", "--dir", dir.file("pki"), "--site", "test"]))
        for (name, role) in [("hub", "coordinator"), ("root", "admin")] + nodes.map({ ($0.name, "agent") }) {
            try issue(name, role: role)
        }
    }

    deinit {
        for process in processes.values { process.stop(SIGKILL) }
    }

    /// Issues a certificate into `certs/`.
    public func issue(_ name: String, role: String) throws {
        try Self.ok(
            try Command.scmBackup([
                "pki", "issue", "--dir", dir.file("pki"), "--name", name, "--role", role, "--out", dir.file("certs"),
            ]))
    }

    /// Throws with the command's standard error unless it exited with 0.
    public static func ok(_ r: CommandResult) throws {
        guard r.status == 0 else {
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: r.stderr])
        }
    }

    public var url: String { "https://127.0.0.1:\(port)" }

    /// Starts (or restarts) the coordinator: on port 0 the first time, then on the port it got,
    /// so that agents configured with its URL find it again.
    /// With `configFile`, that file is used as it is (a hub restored into another folder);
    /// else `site.toml` is written from ``nodes``, ``pairings`` and the rest.
    public func startCoordinator(arguments: [String] = [], configFile: String? = nil) throws {
        // A stale port file from an earlier run would be read as this one's.
        if FileManager.default.fileExists(atPath: dir.file("port")) {
            try FileManager.default.removeItem(atPath: dir.file("port"))
        }
        if configFile == nil {
            try SiteConfigFiles.writeCoordinator(
                dir.file("site.toml"), listen: "127.0.0.1:\(port)", certs: dir.file("certs"), pki: dir.file("pki"),
                database: dir.file("catalog.sqlite"), leaseSeconds: leaseSeconds, nodes: nodes, pairings: pairings,
                extra: coordinatorExtra, pairingExtra: pairingExtra, schedule: schedule, tables: siteTables)
        }
        processes["hub"] = try BackgroundProcess(
            Paths.scmBackupBinary,
            ["coordinator", "--config", configFile ?? dir.file("site.toml"), "--port-file", dir.file("port")]
                + arguments,
            log: dir.file("coordinator.log"))
        let text = try BackgroundProcess.waitForFile(dir.file("port"))
        guard let got = Int(text) else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: dir.file("port")])
        }
        port = got
    }

    /// Writes `name`'s agent.toml and starts it; it waits for the coordinator to be started first.
    public func startAgent(
        _ name: String, sourceRoots: [String]? = nil, tools: [String: String] = [:], dataPort: Bool = false,
        leaseWait: Int = 2, extra: String = "", arguments: [String] = []
    ) throws {
        let store = dir.file("store-\(name)")
        let id = try storeIDs[name] ?? Store(root: store).adopt().id
        storeIDs[name] = id
        try SiteConfigFiles.writeAgent(
            dir.file("agent-\(name).toml"), coordinator: url, name: name, certs: dir.file("certs"),
            pki: dir.file("pki"), store: store, storeID: id, leaseWait: leaseWait,
            sourceRoots: sourceRoots ?? [dir.path], tools: tools, dataPort: dataPort, extra: extra)
        processes[name] = try BackgroundProcess(
            Paths.scmBackupBinary, ["agent", "--config", dir.file("agent-\(name).toml")] + arguments,
            log: dir.file("agent-\(name).log"))
    }

    /// Writes the end of each process's log (`coordinator.log`, `agent-NAME.log`, …) to standard
    /// error: what the processes said, for a test that failed on CI. A log not written (yet) is
    /// empty, a reason of its own worth seeing.
    public func printLogs(_ names: [String], last: Int = 8000) {
        for name in names {
            let text = (try? String(contentsOfFile: dir.file(name), encoding: .utf8)) ?? ""  // none: shown empty
            FileHandle.standardError.write(Data("--- \(name):\n\(text.suffix(last))\n".utf8))
        }
    }

    /// Keeps the coordinator's port from every other process while the hub is down (a socket
    /// bound to it, never listening: agents are refused as by a dead hub), so that a long outage
    /// in a busy test run does not find the port taken when the hub comes back. Close the
    /// returned descriptor right before ``startCoordinator(arguments:configFile:)``.
    public func holdPort() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            close(fd)
            throw CocoaError(
                .fileWriteUnknown,
                userInfo: [NSLocalizedDescriptionKey: "port \(port) is taken already (errno \(errno))"])
        }
        return fd
    }

    /// Stops a process (`hub` or an agent's name) with `signal`; returns its exit status.
    @discardableResult
    public func stop(_ name: String, _ signal: Int32 = SIGTERM) -> Int32? {
        guard let process = processes.removeValue(forKey: name) else { return nil }
        return process.stop(signal)
    }

    public func process(_ name: String) -> BackgroundProcess? { processes[name] }

    /// Runs the admin CLI against the coordinator as `root`.
    /// `input` is its standard input (answers to its questions).
    public func admin(_ args: [String], input: String? = nil) throws -> CommandResult {
        try Command.scmBackup(
            args + [
                "--coordinator", url, "--ca", dir.file("pki/ca.pem"), "--cert", dir.file("certs/root.pem"), "--key",
                dir.file("certs/root.key"),
            ], input: input)
    }

    /// Runs the admin CLI with `--json` and decodes its answer.
    public func json<T: Decodable>(_ type: T.Type, _ args: [String]) throws -> T {
        let r = try admin(args + ["--json"])
        try Self.ok(r)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(r.stdout.utf8))
    }

    /// A task as `tasks list --json` shows it, the fields the tests read.
    public struct TaskView: Decodable, Sendable {
        public var id: Int64
        public var kind: String
        public var state: String
        public var attempts: Int
        public var lastError: String?
        public var lastErrorCode: String?
        public var detail: String?
    }

    /// An artifact as `artifacts --json` shows it, with its copies.
    public struct ArtifactView: Decodable, Sendable {
        public struct Copy: Decodable, Sendable {
            public var node: String
            public var path: String
            public var state: String
            public var problem: String?
        }
        public var source: String
        public var fileName: String
        public var sha256: String?
        public var copies: [Copy]
    }

    /// Every task, newest first.
    /// The newest 1,000 tasks (the most one page holds; no test makes more).
    public func tasks() throws -> [TaskView] { try json([TaskView].self, ["tasks", "list", "--limit", "1000"]) }

    /// Waits until every task has ended (succeeded, failed, cancelled); returns them.
    @discardableResult
    public func settle(seconds: Double = 120) throws -> [TaskView] {
        var all: [TaskView] = []
        try waitUntil("every task ended", seconds: seconds) {
            all = try tasks()
            return all.allSatisfy { ["succeeded", "failed", "cancelled"].contains($0.state) }
        }
        return all
    }

    /// Queues a backup of `source` on `node` as the admin.
    public func backup(_ source: String, on node: String) throws {
        try Self.ok(try admin(["tasks", "submit", "--kind", "backup", "--node", node, "--source", source]))
    }

    /// A pre-backup step for an agent's `[pre_backup.slow]` that touches `started` and sleeps
    /// `seconds`: a backup that takes longer than a lease, or long enough to be hit mid-way.
    /// Returns the file it touches and the agent.toml lines that define it.
    public func slowStep(seconds: Int) throws -> (started: String, agentExtra: String) {
        let started = dir.file("slow-step-started")
        let script = dir.file("slow-step")
        try "#!/bin/sh\ntouch '\(started)'\nsleep \(seconds)\n".write(toFile: script, atomically: true, encoding: .utf8)
        guard chmod(script, 0o755) == 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: script])
        }
        return (started, "\n[pre_backup.slow]\ncommand = [\(SiteConfigFiles.quote(script))]")
    }

    /// Waits until `count` nodes are online (`nodes --json`).
    public func waitUntilOnline(_ count: Int, seconds: Double = 60) throws {
        struct Node: Decodable { var online: Bool }
        try waitUntil("\(count) agents online", seconds: seconds) {
            try json([Node].self, ["nodes"]).filter(\.online).count >= count
        }
    }

    /// Polls `condition` until it holds, up to `seconds`; throws naming `what` otherwise.
    public func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        try Self.waitUntil(what, seconds: seconds, condition)
    }

    /// ``waitUntil(_:seconds:_:)`` before there is a site (a server the site's file will name).
    public static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            usleep(200_000)
        }
        throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "never: \(what)"])
    }
}
