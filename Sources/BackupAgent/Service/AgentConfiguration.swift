import BackupCore
import BackupProtocol
import Foundation

/// What an agent needs: how to reach the coordinator, its store, the tools of the source
/// kinds on this node, and the folders its sources may live in.
///
/// Sources are defined once, in the site configuration on the hub, and arrive with each
/// backup task; the agent still refuses any whose path lies outside its `sourceRoots`, so a
/// compromised or mistaken hub cannot make it read another part of the machine.
public struct AgentConfiguration: Sendable {
    public var coordinator: CoordinatorEndpoint
    /// The agent's store folder (must carry its marker, or be new and empty).
    public var storePath: String
    /// The node's name: the common name of its certificate.
    public var node: String
    /// Folders the node's sources must lie in; nil allows any absolute path the site names.
    public var sourceRoots: [String]?
    /// Paths and environment of `svnadmin`, `git`, `trac-admin`, ... on this node.
    public var tools: SourceTools
    /// How long a lease request waits on the coordinator. The default is 25 seconds.
    public var leaseWaitSeconds = 25
    /// The version reported at registration.
    public var version = "0.1.0"
    /// Where the data port listens (HOST, PORT; port 0 picks a free one); nil: no data port,
    /// so this node can only open transfers (push as sender, pull as receiver).
    public var dataListen: (host: String, port: Int)?
    /// The coordinator's public ticket key (`ticket-signing.pub`); transfers need it.
    public var ticketKeyPath: String?
    /// Transfers the data port serves at once; more are answered 503 (retry later).
    public var maxTransfers = 4
    /// A transfer that moves no byte for this long is cut (and resumed). The default is 60 s.
    public var stallSeconds: Double = 60

    public init(
        coordinator: CoordinatorEndpoint, storePath: String, node: String, sourceRoots: [String]? = nil,
        tools: SourceTools = SourceTools()
    ) {
        self.coordinator = coordinator
        self.storePath = storePath
        self.node = node
        self.sourceRoots = sourceRoots
        self.tools = tools
    }

    /// The kinds this node can back up: those whose tools it finds (Trac, SQLite and folders
    /// need none of their own: built-in copies stand in).
    public var kinds: [String] {
        var kinds: [SourceKind] = [.folder, .sqlite, .trac]
        if (try? ToolRunner.resolve(tools.svnadmin.program)) != nil { kinds.append(.svn) }  // Absent: no svn.
        if (try? ToolRunner.resolve(tools.git.program)) != nil { kinds.append(.git) }  // Absent: no git.
        return kinds.map(\.rawValue).sorted()
    }

    /// Reads an agent's configuration file: `[agent]` (coordinator URL, certificate, key, CA,
    /// store, `source_roots`, `lease_wait_seconds`) and `[tools]` (program paths and `env`).
    /// Relative paths are relative to the file's folder. The node's name is its certificate's,
    /// which must be an agent certificate. Unknown keys and impossible values are refused,
    /// naming file, line and key.
    public static func load(_ path: String) throws -> AgentConfiguration {
        let file = try ConfigFile(path: path)
        let top = file.top
        guard let a = try top.table("agent") else {
            throw top.error(nil, "missing table [agent] (coordinator, certificate, key, ca, store)")
        }
        let url = try a.requiredString("coordinator")
        guard url.hasPrefix("https://"), URL(string: url)?.host != nil else {
            throw a.error("coordinator", "'\(url)' is not an https:// URL")
        }
        let endpoint = CoordinatorEndpoint(
            url: url, certificate: try a.requiredFile("certificate"), privateKey: try a.requiredFile("key"),
            caCertificate: try a.requiredFile("ca"))
        let identity: PeerIdentity
        do { identity = try PeerIdentity(certificate: try PEMFiles.certificate(endpoint.certificate)) } catch {
            throw a.error("certificate", "\(error)")
        }
        guard identity.role == .agent else {
            throw a.error(
                "certificate",
                "'\(endpoint.certificate)' is a \(identity.role.rawValue) certificate; an agent needs an agent certificate"
            )
        }
        var config = AgentConfiguration(
            coordinator: endpoint, storePath: file.resolve(try a.requiredString("store")), node: identity.name)
        if let roots = try a.strings("source_roots") {
            for root in roots where !root.hasPrefix("/") || root.split(separator: "/").contains("..") {
                throw a.error("source_roots", "'\(root)' must be an absolute path without '..'")
            }
            config.sourceRoots = roots
        }
        if let listen = try a.string("data_listen") {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                (0...65535).contains(port), colon != listen.startIndex
            else { throw a.error("data_listen", "'\(listen)' is not HOST:PORT (port 0 to 65535)") }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            config.dataListen = (host, port)
        }
        if a.keys.contains("ticket_key") {
            let path = try a.requiredFile("ticket_key")
            do { _ = try Ed25519PEM.readPublicKey(path) } catch {
                throw a.error("ticket_key", "'\(path)' is not an Ed25519 public key: \(error)")
            }
            config.ticketKeyPath = path
        }
        if let n = try a.int("max_transfers") {
            guard (1...64).contains(n) else { throw a.error("max_transfers", "\(n) is outside 1...64") }
            config.maxTransfers = n
        }
        if let s = try a.double("stall_seconds") {
            guard (1...3600).contains(s) else { throw a.error("stall_seconds", "\(s) is outside 1...3600") }
            config.stallSeconds = s
        }
        if config.dataListen != nil && config.ticketKeyPath == nil {
            throw a.error("data_listen", "a data port needs ticket_key (the coordinator's ticket-signing.pub)")
        }
        if let wait = try a.int("lease_wait_seconds") {
            guard (1...30).contains(wait) else { throw a.error("lease_wait_seconds", "\(wait) is outside 1...30") }
            config.leaseWaitSeconds = wait
        }
        try a.finish()
        if let t = try top.table("tools") {
            let programs: [(String, WritableKeyPath<SourceTools, Tool>)] = [
                ("svnadmin", \.svnadmin), ("svnlook", \.svnlook), ("git", \.git), ("trac_admin", \.tracAdmin),
                ("sqlite3", \.sqlite3),
            ]
            for (key, keyPath) in programs {
                guard let program = try t.string(key) else { continue }
                guard program.hasPrefix("/") else { throw t.error(key, "'\(program)' must be an absolute path") }
                guard FileManager.default.isExecutableFile(atPath: program) else {
                    throw t.error(key, "'\(program)' is not an executable file")
                }
                config.tools[keyPath: keyPath].program = program
            }
            if let env = try t.stringMap("env") { config.tools.addEnvironment(env) }
            try t.finish()
        }
        try top.finish()
        return config
    }

    /// The source spec of a task's definition, with this node's tools; refused when a path is
    /// outside `sourceRoots`.
    func spec(_ definition: SourceDefinition) throws -> SourceSpec {
        for path in [definition.path] + (definition.svnSource.map { [$0.path] } ?? []) {
            guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw BackupError(
                    .refused, "Source '\(definition.name)' has path '\(path)': not an absolute clean path.")
            }
            if let roots = sourceRoots,
                !roots.contains(where: { path == $0 || path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") })
            {
                throw BackupError(
                    .refused,
                    "Source '\(definition.name)' at '\(path)' is outside this node's source_roots (\(roots.joined(separator: ", "))); node '\(node)' refuses it."
                )
            }
        }
        return SourceSpec(
            kind: definition.kind, name: definition.name, path: definition.path, tools: tools,
            preBackup: definition.preBackup, verifySnapshot: definition.verifySnapshot ?? false)
    }
}

/// Exponential backoff with full jitter: 0.5 s doubling to at most 30 s.
struct Backoff {
    private var attempt = 0
    mutating func reset() { attempt = 0 }
    mutating func next() -> Duration {
        let cap = min(30.0, 0.5 * pow(2.0, Double(attempt)))
        attempt += 1
        return .milliseconds(Int(Double.random(in: 0.1...1.0) * cap * 1000))
    }
}
