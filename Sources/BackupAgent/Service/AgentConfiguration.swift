import BackupClient
import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging

/// What an agent needs: how to reach the coordinator, its store, the tools of the source
/// kinds on this node, and the folders its sources may live in.
///
/// Sources are defined once, in the site configuration on the hub, and arrive with each
/// backup task; the agent still refuses any whose path lies outside its `sourceRoots`, so a
/// compromised or mistaken hub cannot make it read another part of the machine.
public struct AgentConfiguration: Sendable {
    public var coordinator: CoordinatorEndpoint
    /// The agent's store folder; it must carry the marker with ``storeID``.
    public var storePath: String
    /// The id of the store's marker (`store_id`, printed by `scm-backup init-store`): the agent
    /// works only in a store that carries it, and never writes a marker itself.
    public var storeID: String
    /// The file this configuration was read from, for messages ("agent.toml" when built in code).
    public var file = "agent.toml"
    /// The node's name: the common name of its certificate.
    public var node: String
    /// Folders the node's sources must lie in (links resolved); nil: the node backs up nothing.
    public var sourceRoots: [String]?
    /// Paths and environment of `svnadmin`, `git`, `trac-admin`, ... on this node.
    public var tools: SourceTools
    /// How long a lease request waits on the coordinator. The default is 25 seconds.
    public var leaseWaitSeconds = 25
    /// The least severe log level written (`log_level`: trace, debug, info, notice, warning,
    /// error, critical). The default is info; `--log-level` overrides it.
    public var logLevel: Logger.Level = .info
    /// The version reported at registration.
    public var version = "0.3.0"
    /// Where the data port listens (HOST, PORT; port 0 picks a free one); nil: no data port,
    /// so this node can only open transfers (push as sender, pull as receiver).
    public var dataListen: (host: String, port: Int)?
    /// The coordinator public keys trusted for tickets and artifact receipts: `ticket_key`
    /// (`ticket-signing.pub`) then each of `trusted_signing_keys` (a new hub's key, added before
    /// it takes over). Transfers need one.
    public var ticketKeyFiles: [String] = []
    /// Transfers the data port serves at once; more are answered 503 (retry later).
    public var maxTransfers = 4
    /// A transfer that moves no byte for this long is cut (and resumed). The default is 60 s.
    public var stallSeconds: Double = 60
    /// The only nodes this agent sends to or receives from; nil: any agent of the site that a
    /// ticket names.
    public var peers: Set<String>?
    /// The only folders a recovery through the site (`scm-backup recover --node`) may restore
    /// into (`recovery_roots`, absolute, without symlinks); empty: every recover task is refused.
    public var recoveryRoots: [String] = []
    /// Whether the agent backs up its scheduled sources on its own while the hub is away
    /// (`fallback`, default true), after `fallback_grace` seconds past a slot without an answer
    /// from the hub (default 60), and only while more than `fallback_min_free` percent of the
    /// store's disk is free (default 10; kept here as a share, 0.10).
    /// `[notify]`: the one notice this agent sends on its own when the hub does not answer.
    public var notify: HubSilenceNotice?
    public var fallback = true
    public var fallbackGrace: TimeInterval = 60
    public var fallbackMinFree = 0.10
    /// The coordinator public keys trusted for purge orders: `purge_key` (`purge-signing.pub`)
    /// then each of `trusted_purge_keys`; without one every purge is refused.
    public var purgeKeyFiles: [String] = []

    /// The keys of ``ticketKeyFiles``, read now (a key file replaced takes effect at once).
    public func ticketKeys() throws -> SigningKeyring { try SigningKeyring(files: ticketKeyFiles) }
    /// The keys of ``purgeKeyFiles``.
    public func purgeKeys() throws -> SigningKeyring { try SigningKeyring(files: purgeKeyFiles) }
    /// What this node keeps whatever an order says (`floor_keep`, `floor_min_age`,
    /// `floor_max_per_order`, `trash_hours`).
    public var floors = PurgeFloors()
    /// `purge_paused = true`: every purge order is refused (as is any while the store holds
    /// ``purgePauseFile``): the node's own switch, which needs no trust in the hub.
    public var purgePaused = false
    /// The file in the store whose presence refuses every purge order (the legacy `ABORT`).
    public static let purgePauseFile = ".scm-backup-purge-paused"
    /// Pre-backup steps this node allows, by name (`[pre_backup.NAME]`); the site only names one.
    public var preBackupSteps: [String: PreBackupStepDefinition] = [:]
    /// Timeouts and caps of the data port (`handshake_timeout`, `idle_timeout`,
    /// `max_connections`, `max_connections_per_address` in `[agent]`).
    public var dataLimits = ListenerLimits()
    /// How long a backup, verify or inventory goes on while no renewal gets through (the hub is
    /// away) once its lease has run out by the agent's clock; its result is journalled and
    /// reported when the hub is back. Past this, the work stops (a hung tool does not hold an
    /// `svnadmin freeze` forever). `offline_work_seconds`; the default is 3600.
    public var offlineWorkSeconds: Double = 3600
    /// The variables `[tools].env` adds; a pre-backup step gets these and nothing else.
    public var toolEnvironment: [String: String] = [:]

    public init(
        coordinator: CoordinatorEndpoint, storePath: String, storeID: String, node: String,
        sourceRoots: [String]? = nil, tools: SourceTools = SourceTools()
    ) {
        self.coordinator = coordinator
        self.storePath = storePath
        self.storeID = storeID
        self.node = node
        self.sourceRoots = sourceRoots
        self.tools = tools
    }

    /// The agent's store, after checking that it carries the marker with ``storeID``
    /// (``Store/openExisting(_:id:configuredIn:)``); every task and the data port open it so.
    public func store() throws -> Store {
        try Store.openExisting(storePath, id: storeID, configuredIn: file)
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
        let storePath = file.resolve(try a.requiredString("store"))
        guard let storeID = try a.string("store_id") else {
            throw a.error(
                "store_id",
                "missing: the id of the store's marker; run 'scm-backup init-store --store \(storePath)' (once, on the mounted disk) and copy the id it prints"
            )
        }
        var config = AgentConfiguration(
            coordinator: endpoint, storePath: storePath, storeID: storeID, node: identity.name)
        config.file = path
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
        config.ticketKeyFiles = try Self.keyFiles(a, in: file, one: "ticket_key", list: "trusted_signing_keys")
        if let n = try a.int("max_transfers") {
            guard (1...64).contains(n) else { throw a.error("max_transfers", "\(n) is outside 1...64") }
            config.maxTransfers = n
        }
        if let s = try a.double("stall_seconds") {
            guard (1...3600).contains(s) else { throw a.error("stall_seconds", "\(s) is outside 1...3600") }
            config.stallSeconds = s
        }
        if let s = try a.double("fallback_grace") {
            guard (1...86400).contains(s) else { throw a.error("fallback_grace", "\(s) is outside 1...86400 seconds") }
            config.fallbackGrace = s
        }
        if let s = try a.double("fallback_min_free") {
            guard (0...99).contains(s) else { throw a.error("fallback_min_free", "\(s) is outside 0...99 (percent)") }
            config.fallbackMinFree = s / 100
        }
        if let v = try a.bool("fallback") { config.fallback = v }
        if let s = try a.double("offline_work_seconds") {
            guard (0...86400).contains(s) else { throw a.error("offline_work_seconds", "\(s) is outside 0...86400") }
            config.offlineWorkSeconds = s
        }
        if config.dataListen != nil && config.ticketKeyFiles.isEmpty {
            throw a.error(
                "data_listen",
                "a data port needs ticket_key or trusted_signing_keys (the coordinator's ticket-signing.pub)")
        }
        if let name = try a.string("coordinator_name") {
            do { try StoreName.validate(name, what: "coordinator name") } catch let e as BackupError {
                throw a.error("coordinator_name", e.message)
            }
            config.coordinator.coordinatorName = name
        }
        if let peers = try a.strings("peers") {
            for peer in peers {
                do { try StoreName.validate(peer, what: "peer name") } catch let e as BackupError {
                    throw a.error("peers", e.message)
                }
            }
            config.peers = Set(peers)
        }
        if let roots = try a.strings("recovery_roots") {
            for root in roots {
                guard root.hasPrefix("/"), !root.split(separator: "/").contains(".."), !root.contains("\0") else {
                    throw a.error("recovery_roots", "'\(root)' is not an absolute path without '..'")
                }
                config.recoveryRoots.append((root as NSString).standardizingPath)
            }
        }
        config.purgeKeyFiles = try Self.keyFiles(a, in: file, one: "purge_key", list: "trusted_purge_keys")
        if let v = try a.bool("purge_paused") { config.purgePaused = v }
        if let v = try a.int("floor_keep") {
            guard (1...10_000).contains(v) else { throw a.error("floor_keep", "\(v) is outside 1...10000") }
            config.floors.keep = v
        }
        if let text = try a.string("floor_min_age") {
            do { config.floors.minAge = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw a.error(
                    "floor_min_age", "'\(text)' is not a duration such as \"1h\" or \"2d\" (\(error.message))")
            }
        }
        if let v = try a.int("floor_max_per_order") {
            guard (1...100_000).contains(v) else {
                throw a.error("floor_max_per_order", "\(v) is outside 1...100000")
            }
            config.floors.maxPerOrder = v
        }
        if let v = try a.double("trash_hours") {
            guard (0...8760).contains(v) else { throw a.error("trash_hours", "\(v) is outside 0...8760") }
            config.floors.trashHours = v
        }
        config.dataLimits = try ListenerLimits.read(a)
        if let level: Logger.Level = try a.choice("log_level") { config.logLevel = level }
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
            if let env = try t.stringMap("env") {
                config.tools.addEnvironment(env)
                config.toolEnvironment = env
            }
            try t.finish()
        }
        if let n = try top.table("notify") {
            guard let command = try n.strings("command"), let program = command.first, program.hasPrefix("/") else {
                throw n.error(
                    "command",
                    "give the program (an absolute path) and its arguments, e.g. [\"/usr/sbin/sendmail\", \"-t\", \"-oi\"]"
                )
            }
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw n.error("command", "'\(program)' is not an executable file")
            }
            guard let to = try n.strings("to"), !to.isEmpty else { throw n.error("to", "give the addresses to tell") }
            for address in to where !MailMessage.isAddress(address) {
                throw n.error(
                    "to", "'\(AuditText.escape(address, limit: 100))' is not a mail address such as ops@example.org")
            }
            var notify = HubSilenceNotice(command: command, to: to)
            if let from = try n.string("from") {
                guard MailMessage.isAddress(from) else {
                    throw n.error("from", "'\(AuditText.escape(from, limit: 100))' is not a mail address")
                }
                notify.from = from
            }
            if let text = try n.string("hub_silent_after") {
                do { notify.after = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                    throw n.error("hub_silent_after", "'\(text)' is not a duration such as \"2h\" (\(error.message))")
                }
                guard notify.after >= 1 else {
                    throw n.error("hub_silent_after", "'\(text)' must be at least a second")
                }
            }
            try n.finish()
            config.notify = notify
        }
        if let steps = try top.table("pre_backup") {
            for name in steps.keys {
                guard let step = try steps.table(name) else { continue }
                guard !name.isEmpty, name.count <= 64,
                    name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
                else { throw steps.error(name, "'\(name)' is not a step name (letters, digits, '-', '_', '.')") }
                guard let command = try step.strings("command"), let program = command.first else {
                    throw step.error("command", "give the program (an absolute path) and its arguments")
                }
                guard program.hasPrefix("/"), FileManager.default.isExecutableFile(atPath: program) else {
                    throw step.error("command", "'\(program)' must be the absolute path of an executable file")
                }
                var timeout: Double = 300
                if let t = try step.double("timeout") {
                    guard (1...86400).contains(t) else { throw step.error("timeout", "\(t) is outside 1...86400") }
                    timeout = t
                }
                try step.finish()
                config.preBackupSteps[name] = PreBackupStepDefinition(command: command, timeoutSeconds: timeout)
            }
            try steps.finish()
        }
        try top.finish()
        return config
    }

    /// The public key files of `one` (a file) and `list` (files), each checked to be an Ed25519
    /// public key; refusals name the key and the file.
    private static func keyFiles(_ a: ConfigTable, in file: ConfigFile, one: String, list: String) throws -> [String] {
        var files: [String] = []
        if a.keys.contains(one) { files.append(try a.requiredFile(one)) }
        for path in try a.strings(list) ?? [] {
            let resolved = file.resolve(path)
            guard FileManager.default.isReadableFile(atPath: resolved) else {
                throw a.error(list, "'\(resolved)' does not exist or cannot be read")
            }
            files.append(resolved)
        }
        for path in files {
            do { _ = try Ed25519PEM.readPublicKey(path) } catch {
                throw a.error(
                    files.first == path && a.keys.contains(one) ? one : list,
                    "'\(path)' is not an Ed25519 public key: \(error)")
            }
        }
        return files
    }

    /// The source spec of a task's definition, with this node's tools and its path resolved;
    /// refused when the source, or anything of it that could point elsewhere, resolves outside
    /// `sourceRoots` (see ``SourceConfinement``), and when this node defines no roots at all.
    func spec(_ definition: SourceDefinition) throws -> SourceSpec {
        guard let roots = sourceRoots else {
            throw BackupError(
                .refused,
                "Node '\(node)' defines no source_roots in its agent.toml, so it backs up nothing; source '\(definition.name)' is refused."
            )
        }
        let confinement = SourceConfinement(roots: roots)
        var definition = definition
        for path in [definition.path] + (definition.svnSource.map { [$0.path] } ?? []) {
            guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw BackupError(
                    .refused, "Source '\(definition.name)' has path '\(path)': not an absolute clean path.")
            }
        }
        definition.path = try confinement.check(
            definition.name, kind: definition.kind, path: definition.path, sqlite3: tools.sqlite3)
        var step: PreBackupStep?
        if let name = definition.preBackup {
            guard let defined = preBackupSteps[name] else {
                let known = preBackupSteps.keys.sorted().joined(separator: ", ")
                throw BackupError(
                    .refused,
                    "Source '\(definition.name)' asks for pre-backup step '\(name)', which node '\(node)' does not define (\(known.isEmpty ? "it defines none" : "it has: \(known)"); add [pre_backup.\(name)] to its agent.toml)."
                )
            }
            step = PreBackupStep(
                name: name,
                command: defined.command.map { $0.replacingOccurrences(of: "{path}", with: definition.path) },
                environment: toolEnvironment, timeoutSeconds: defined.timeoutSeconds)
        }
        return SourceSpec(
            kind: definition.kind, name: definition.name, path: definition.path, tools: tools,
            preBackup: step, verifySnapshot: definition.verifySnapshot ?? false)
    }
}

/// A pre-backup step as an agent's `[pre_backup.NAME]` table defines it.
public struct PreBackupStepDefinition: Sendable, Equatable {
    /// The program (absolute) and its arguments; `{path}` stands for the source's path.
    public var command: [String]
    /// How long it may run before its process group is killed. The default is 300 seconds.
    public var timeoutSeconds: Double
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

/// `[notify]` of `agent.toml`: when no call to the hub has succeeded for `hub_silent_after`
/// (default 2 h), the agent sends one notice through `command` (an argv, run without a shell,
/// the mail on stdin) to `to`, and one more when the hub answers again. The hub's alerts die
/// with it; this is how a dead hub is noticed from the nodes.
public struct HubSilenceNotice: Sendable, Equatable {
    public var command: [String]
    public var to: [String]
    public var from = "scm-backup-agent"
    public var after: TimeInterval = 2 * 3600
    public init(command: [String], to: [String]) {
        self.command = command
        self.to = to
    }
}
