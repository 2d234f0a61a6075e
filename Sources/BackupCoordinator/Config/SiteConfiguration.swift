import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging

/// The site as the hub's configuration file describes it: its nodes with their roles and
/// addresses, the sources of each server node, and which backup nodes receive which server's
/// artifacts, and when each source is backed up ([schedule] and per-source schedule and
/// time_zone). Later issues add retention and alerts. See `deploy/site.example.toml`.
public struct SiteConfiguration: Sendable, Equatable {
    /// What a node does in the site.
    public enum Role: String, Sendable, CaseIterable, Codable {
        /// Hosts sources.
        case server
        /// Holds copies for its paired servers.
        case backup
        /// Runs the coordinator (and may also be a server).
        case hub
    }

    public struct Node: Sendable, Equatable {
        public var name: String
        public var roles: Set<Role>
        /// Host names or IP addresses others reach it at (its data port, in a later issue).
        public var addresses: [String]
        /// Its sources by name (server nodes only).
        public var sources: [String: SourceDefinition]
        /// When each source is backed up (a Trac environment with an svn source: that source's).
        public var schedules: [String: SourceSchedule]
        /// Verified copies a run wants of each source's artifacts (`copies`); a source not
        /// named wants one on every backup node paired with this node.
        public var copies: [String: Int] = [:]
        /// Transfers to this node on their way at once (`max_transfers`); nil for the
        /// site's ``RunLimits/maxTransfers``.
        public var maxTransfers: Int?
        /// Tasks its agent runs at once (`max_tasks`, default 1). The agent learns it at
        /// register; the coordinator never leases it more, and never anything beside a purge.
        public var maxTasks = 1
        /// Each source's own `retention` table, by source name.
        public var retention: [String: RetentionTable] = [:]
        /// A backup node's `retention` table: laid over the source's for the copies it holds.
        public var holderRetention: RetentionTable?

        public init(
            name: String, roles: Set<Role>, addresses: [String] = [], sources: [String: SourceDefinition] = [:],
            schedules: [String: SourceSchedule] = [:]
        ) {
            self.name = name
            self.roles = roles
            self.addresses = addresses
            self.sources = sources
            self.schedules = schedules
        }
    }

    /// Which way the bytes are started: the server PUTs to the backup node, or the backup node
    /// GETs from the server (where only that direction is open).
    public enum Direction: String, Sendable, CaseIterable, Codable {
        case push, pull
    }

    public struct Pairing: Sendable, Equatable {
        public var server: String
        public var backup: String
        public var direction: Direction
        /// Bytes per second a transfer between the two may use; nil for no limit.
        public var bandwidthLimit: Int64?
        public init(server: String, backup: String, direction: Direction = .push, bandwidthLimit: Int64? = nil) {
            self.server = server
            self.backup = backup
            self.direction = direction
            self.bandwidthLimit = bandwidthLimit
        }
    }

    /// The pairing between two nodes, either way round.
    public func pairing(_ a: String, _ b: String) -> Pairing? {
        pairings.first { ($0.server == a && $0.backup == b) || ($0.server == b && $0.backup == a) }
    }

    /// The site-wide `[schedule]` table: what a source without its own `schedule` follows.
    public struct ScheduleDefaults: Sendable, Equatable {
        /// A cron expression or `"off"`.
        public var expression = "0 2 * * *"
        /// An IANA zone name.
        public var timeZone = "UTC"
        /// Each source fires this many seconds after its slot at most (its own, fixed share).
        public var jitterSeconds = 0
        /// After the hub was down, a slot missed within ``catchUpWithin`` runs once at start.
        public var catchUp = true
        public var catchUpWithin: TimeInterval = 86_400
        /// A source with no new artifact this long after its last slot is late.
        public var backupGrace: TimeInterval = 6 * 3600

        public init() {}
    }

    /// The site-wide `[verify]` table: every copy re-verified within `max_age`, oldest first,
    /// at most `budget` bytes per node per night, inside `window` (site zone).
    public struct VerifyPolicy: Sendable, Equatable {
        /// A copy not verified for longer is `verify-overdue`, and no longer counts as verified.
        public var maxAge: TimeInterval = 30 * 86_400
        /// Bytes each node reads per night at most.
        public var budget: Int64 = 200 << 30
        /// The nightly window, minutes after midnight in the site's zone (`time_zone` of
        /// `[schedule]`): verification and inventories are queued at its start.
        public var windowStart = 60
        public var windowEnd = 360
        /// `window = "off"`: no nightly inventory or verify is queued (verify by hand).
        public var off = false

        public init() {}
    }

    /// The site-wide `[runs]` table: how a run's tasks are limited, retried and timed out.
    public struct RunLimits: Sendable, Equatable {
        /// Transfers to one receiver on their way at once (a node's `max_transfers` overrides it).
        public var maxTransfers = 2
        /// Hand-outs a run's task gets at most (each failure's code still decides whether it is
        /// retried at all, and its own limit; the wait doubles up to an hour).
        public var maxAttempts = 5
        /// How long a run's transfers to an offline node wait for it before they fail.
        public var offlineWait: TimeInterval = 7 * 86_400
        /// A backup leased longer than this fails `timeout`.
        public var backupMaxDuration: TimeInterval = 6 * 3600
        /// A transfer leased longer than this fails `timeout`.
        public var transferMaxDuration: TimeInterval = 12 * 3600

        public init() {}

        /// The `max_duration` of a task kind; nil for kinds without one.
        public func maxDuration(of kind: TaskKind) -> TimeInterval? {
            switch kind {
            case .backup: backupMaxDuration
            case .transfer, .recover: transferMaxDuration
            default: nil
            }
        }
    }

    public var nodes: [String: Node]
    public var pairings: [Pairing]
    public var schedule: ScheduleDefaults
    public var runs: RunLimits
    public var verify: VerifyPolicy
    /// `[alerts]`: when each alert rule fires and where notices go.
    public var alerts = AlertPolicy()
    /// `[retention]`: the site-wide policy and the purge stage's evidence rules.
    public var purge = PurgeRules()

    public init(
        nodes: [Node], pairings: [Pairing] = [], schedule: ScheduleDefaults = ScheduleDefaults(),
        runs: RunLimits = RunLimits(), verify: VerifyPolicy = VerifyPolicy()
    ) {
        self.nodes = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        self.pairings = pairings
        self.schedule = schedule
        self.runs = runs
        self.verify = verify
    }

    /// Reads `[verify]`: `max_age`, `budget`, `window` ("HH:MM-HH:MM").
    static func readVerify(_ top: ConfigTable) throws -> VerifyPolicy {
        var policy = VerifyPolicy()
        guard let t = try top.table("verify") else { return policy }
        if let text = try t.string("max_age") {
            do { policy.maxAge = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error("max_age", "'\(text)' is not a duration such as \"30d\" (\(error.message))")
            }
            guard policy.maxAge > 0 else { throw t.error("max_age", "'\(text)' must be longer than 0") }
        }
        if let text = try t.string("budget") {
            guard let bytes = ByteSize.parse(text), bytes > 0 else {
                throw t.error("budget", "'\(text)' is not a size such as \"200GiB\" or \"800MiB\"")
            }
            policy.budget = bytes
        }
        if let text = try t.string("window"), text == "off" {
            policy.off = true
        } else if let text = try t.string("window") {
            func minutes(_ part: Substring) -> Int? {
                let hm = part.split(separator: ":")
                guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...24).contains(h), (0...59).contains(m),
                    h * 60 + m <= 1440
                else { return nil }
                return h * 60 + m
            }
            let ends = text.split(separator: "-")
            guard ends.count == 2, let start = minutes(ends[0]), let end = minutes(ends[1]), start != end else {
                throw t.error("window", "'\(text)' is not a window such as \"01:00-06:00\" (site time zone) or \"off\"")
            }
            policy.windowStart = start
            policy.windowEnd = end
        }
        try t.finish()
        return policy
    }

    /// The backup nodes paired with server `node`, by name.
    public func receivers(of node: String) -> [String] {
        pairings.filter { $0.server == node }.map(\.backup).sorted()
    }

    /// Verified copies a run wants of `source` of `node`.
    public func copiesWanted(node: String, source: String) -> Int {
        nodes[node]?.copies[source] ?? receivers(of: node).count
    }

    /// Transfers to `node` allowed on their way at once.
    public func maxTransfers(to node: String) -> Int {
        nodes[node]?.maxTransfers ?? runs.maxTransfers
    }

    /// Reads `[runs]`: `max_transfers`, `max_attempts`, `offline_wait`, `backup_max_duration`,
    /// `transfer_max_duration`.
    static func readRuns(_ top: ConfigTable) throws -> RunLimits {
        var limits = RunLimits()
        guard let t = try top.table("runs") else { return limits }
        if let v = try t.int("max_transfers") {
            guard (1...64).contains(v) else { throw t.error("max_transfers", "\(v) is outside 1...64") }
            limits.maxTransfers = v
        }
        if let v = try t.int("max_attempts") {
            guard (1...20).contains(v) else { throw t.error("max_attempts", "\(v) is outside 1...20") }
            limits.maxAttempts = v
        }
        func duration(_ key: String) throws -> TimeInterval? {
            guard let text = try t.string(key) else { return nil }
            let seconds: TimeInterval
            do { seconds = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error(key, "'\(text)' is not a duration such as \"6h\", \"90m\" or \"7d\" (\(error.message))")
            }
            guard seconds > 0 else { throw t.error(key, "'\(text)' must be longer than 0") }
            return seconds
        }
        if let v = try duration("offline_wait") { limits.offlineWait = v }
        if let v = try duration("backup_max_duration") { limits.backupMaxDuration = v }
        if let v = try duration("transfer_max_duration") { limits.transferMaxDuration = v }
        try t.finish()
        return limits
    }

    /// Reads `[schedule]`: `default`, `time_zone`, `jitter_seconds`, `catch_up`, `catch_up_within`.
    static func readSchedule(_ top: ConfigTable) throws -> ScheduleDefaults {
        var defaults = ScheduleDefaults()
        guard let t = try top.table("schedule") else { return defaults }
        if let v = try t.int("jitter_seconds") {
            guard (0...86_400).contains(v) else { throw t.error("jitter_seconds", "\(v) is outside 0...86400") }
            defaults.jitterSeconds = v
        }
        if let zone = try t.string("time_zone") { defaults.timeZone = zone }
        if let text = try t.string("default") { defaults.expression = text }
        do {
            _ = try SourceSchedule(defaults.expression, zone: defaults.timeZone, source: "")
        } catch {
            let key = TimeZone(identifier: defaults.timeZone) == nil ? "time_zone" : "default"
            throw t.error(key, error.message)
        }
        if let v = try t.bool("catch_up") { defaults.catchUp = v }
        if let text = try t.string("catch_up_within") {
            let seconds: TimeInterval
            do { seconds = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error(
                    "catch_up_within",
                    "'\(text)' is not a duration such as \"24h\", \"90m\" or \"3d\" (\(error.message))")
            }
            guard seconds > 0 else { throw t.error("catch_up_within", "'\(text)' must be longer than 0") }
            defaults.catchUpWithin = seconds
        }
        if let text = try t.string("backup_grace") {
            do { defaults.backupGrace = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error("backup_grace", "'\(text)' is not a duration such as \"6h\" (\(error.message))")
            }
        }
        try t.finish()
        return defaults
    }

    /// Reads `[nodes.*]` (with `[nodes.NAME.sources.*]`) and `[[pairings]]` of `top`.
    static func read(_ top: ConfigTable) throws -> SiteConfiguration {
        let scheduleDefaults = try readSchedule(top)
        let runLimits = try readRuns(top)
        let verifyPolicy = try readVerify(top)
        let (purgeRules, siteRetention) = try readPurgeRules(top)
        // Every retention table read, by its key path, for the keeps-nothing check.
        var retentionTables: [String: ConfigTable] = [:]
        if let siteRetention { retentionTables["retention"] = siteRetention }
        var nodes: [Node] = []
        // Each source's `copies`, checked against its pairings once they are read.
        var copiesWritten: [(node: String, source: String, copies: Int, table: ConfigTable)] = []
        guard let table = try top.table("nodes"), !table.keys.isEmpty else {
            throw top.error(nil, "the site has no nodes: add a [nodes.NAME] table for each machine running an agent")
        }
        for name in table.keys {
            let node = try table.table(name)!
            do { try StoreName.validate(name, what: "node name") } catch let e as BackupError {
                throw table.error(name, e.message)
            }
            let roleNames = try node.strings("roles") ?? []
            var roles = Set<Role>()
            for r in roleNames {
                guard let role = Role(rawValue: r) else {
                    throw node.error(
                        "roles", "unknown role '\(r)': use \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                roles.insert(role)
            }
            if roles.isEmpty { throw node.error("roles", "a node needs at least one role (server, backup, hub)") }
            let addresses = try node.strings("addresses") ?? []
            for a in addresses where a.isEmpty || a.contains(where: { $0.isWhitespace || $0 == "/" }) {
                throw node.error("addresses", "'\(a)' is not a host name or IP address")
            }
            var maxTasks = 1
            if let v = try node.int("max_tasks") {
                guard (1...16).contains(v) else { throw node.error("max_tasks", "\(v) is outside 1...16") }
                maxTasks = v
            }
            var maxTransfers: Int?
            if let v = try node.int("max_transfers") {
                guard (1...64).contains(v) else { throw node.error("max_transfers", "\(v) is outside 1...64") }
                maxTransfers = v
            }
            var holderRetention: RetentionTable?
            if let t = try node.table("retention") {
                guard roles.contains(.backup) else {
                    throw node.error(
                        "retention",
                        "only a backup node has a retention of its own (for the copies it holds); a server's sources have theirs in [nodes.\(name).sources.NAME.retention]"
                    )
                }
                holderRetention = try readRetentionTable(t)
                try t.finish()
                retentionTables["nodes.\(name).retention"] = t
            }
            var sources: [String: SourceDefinition] = [:]
            var schedules: [String: SourceSchedule] = [:]
            var copies: [String: Int] = [:]
            var retention: [String: RetentionTable] = [:]
            if let sourceTable = try node.table("sources") {
                if !roles.contains(.server) && !sourceTable.keys.isEmpty {
                    throw node.error("sources", "only a node with role 'server' has sources")
                }
                var written: [String: (schedule: String?, zone: String?)] = [:]
                for sourceName in sourceTable.keys {
                    let sub = try sourceTable.table(sourceName)!
                    let text = try sub.string("schedule")
                    let zone = try sub.string("time_zone")
                    written[sourceName] = (text, zone)
                    if let n = try sub.int("copies") {
                        guard n >= 0 else { throw sub.error("copies", "\(n) is below 0") }
                        copies[sourceName] = n
                        copiesWritten.append((name, sourceName, n, sub))
                    }
                    if let t = try sub.table("retention") {
                        retention[sourceName] = try readRetentionTable(t)
                        try t.finish()
                        retentionTables["nodes.\(name).sources.\(sourceName).retention"] = t
                    }
                    sources[sourceName] = try readSource(sourceName, sub, in: sourceTable)
                    do {
                        schedules[sourceName] = try SourceSchedule(
                            text ?? scheduleDefaults.expression, zone: zone ?? scheduleDefaults.timeZone,
                            source: "\(name)/\(sourceName)", jitterLimit: scheduleDefaults.jitterSeconds)
                    } catch {
                        let zoneAtFault = TimeZone(identifier: zone ?? scheduleDefaults.timeZone) == nil
                        throw sub.error(zoneAtFault ? "time_zone" : "schedule", error.message)
                    }
                }
                try sourceTable.finish()
                // Pairs: a Trac environment names an svn source of the same node, and is backed
                // up with it, under its schedule.
                for (sourceName, var source) in sources {
                    guard let pair = source.svnSource else { continue }
                    let sub = try sourceTable.table(sourceName)!
                    guard let svn = sources[pair.name], svn.kind == .svn else {
                        throw sub.error(
                            "svn_source", "'\(pair.name)' is not an svn source of node '\(name)'")
                    }
                    source.svnSource = .init(name: svn.name, path: svn.path)
                    sources[sourceName] = source
                    let own = written[sourceName, default: (nil, nil)]
                    if own.schedule != nil || own.zone != nil,
                        schedules[sourceName]?.expression != schedules[svn.name]?.expression
                            || schedules[sourceName]?.zone != schedules[svn.name]?.zone
                    {
                        let key = own.schedule != nil ? "schedule" : "time_zone"
                        throw sub.error(
                            key,
                            "differs from nodes.\(name).sources.\(svn.name)'s: a Trac environment is backed up together with its svn_source, under that source's schedule; remove it here or make the two equal"
                        )
                    }
                    schedules[sourceName] = schedules[svn.name]
                }
            }
            try node.finish()
            var made = Node(name: name, roles: roles, addresses: addresses, sources: sources, schedules: schedules)
            made.copies = copies
            made.maxTransfers = maxTransfers
            made.maxTasks = maxTasks
            made.retention = retention
            made.holderRetention = holderRetention
            nodes.append(made)
        }
        try table.finish()
        let byName = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        var pairings: [Pairing] = []
        for entry in try top.tables("pairings") {
            let server = try entry.requiredString("server")
            let backup = try entry.requiredString("backup")
            let directionName = try entry.string("direction") ?? "push"
            guard let direction = Direction(rawValue: directionName) else {
                throw entry.error("direction", "'\(directionName)' is neither push nor pull")
            }
            guard byName[server]?.roles.contains(.server) == true else {
                throw entry.error("server", "'\(server)' is not a node with role 'server'")
            }
            guard byName[backup]?.roles.contains(.backup) == true else {
                throw entry.error("backup", "'\(backup)' is not a node with role 'backup'")
            }
            guard server != backup else { throw entry.error("backup", "a node cannot be paired with itself") }
            guard !pairings.contains(where: { $0.server == server && $0.backup == backup }) else {
                throw entry.error("backup", "'\(server)' is already paired with '\(backup)'")
            }
            var limit: Int64?
            if let text = try entry.string("bandwidth_limit") {
                guard let bytes = parseRate(text) else {
                    throw entry.error(
                        "bandwidth_limit", "'\(text)' is not a rate such as \"20 MiB/s\", \"500 KiB/s\" or \"1 GiB/s\"")
                }
                limit = bytes
            }
            try entry.finish()
            pairings.append(Pairing(server: server, backup: backup, direction: direction, bandwidthLimit: limit))
        }
        var site = SiteConfiguration(
            nodes: nodes, pairings: pairings, schedule: scheduleDefaults, runs: runLimits, verify: verifyPolicy)
        site.purge = purgeRules
        site.alerts = try AlertPolicy.read(top)
        try site.checkRetention(tables: retentionTables)
        for written in copiesWritten where written.copies > site.receivers(of: written.node).count {
            let paired = site.receivers(of: written.node)
            throw written.table.error(
                "copies",
                "\(written.copies) is more than the backup nodes paired with '\(written.node)' (\(paired.isEmpty ? "none" : paired.joined(separator: ", "))): add [[pairings]] or lower it"
            )
        }
        return site
    }

    private static func readSource(_ name: String, _ t: ConfigTable, in parent: ConfigTable) throws
        -> SourceDefinition
    {
        do { try StoreName.validate(name, what: "source name") } catch let e as BackupError {
            throw parent.error(name, e.message)
        }
        let kindName = try t.requiredString("kind")
        guard let kind = SourceKind(rawValue: kindName) else {
            throw t.error(
                "kind",
                "unknown kind '\(kindName)': use \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let path = try t.requiredString("path")
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
            throw t.error("path", "'\(path)' must be an absolute path without '..'")
        }
        let svnSource = try t.string("svn_source")
        if svnSource != nil && kind != .trac { throw t.error("svn_source", "only a trac source has an svn_source") }
        let preBackup: String?
        if t.isArray("pre_backup") {
            throw t.error(
                "pre_backup",
                "the site names a step, it no longer gives a command: define it on the agent, in agent.toml, as [pre_backup.NAME] command = [\"/usr/bin/sqlite3\", \"{path}/db/trac.db\", \"...\"], and write pre_backup = \"NAME\" here"
            )
        }
        preBackup = try t.string("pre_backup")
        if let preBackup { try Self.validateStepName(preBackup, t, "pre_backup") }
        let verifySnapshot = try t.bool("verify_snapshot")
        if verifySnapshot != nil && kind != .svn { throw t.error("verify_snapshot", "only an svn source has it") }
        try t.finish()
        return SourceDefinition(
            name: name, kind: kind, path: path, svnSource: svnSource.map { .init(name: $0, path: "") },
            preBackup: preBackup, verifySnapshot: verifySnapshot)
    }

    /// A step name: what a `[pre_backup.NAME]` table of an agent may be called.
    static func validateStepName(_ name: String, _ t: ConfigTable, _ key: String) throws {
        guard !name.isEmpty, name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else { throw t.error(key, "'\(name)' is not a step name (letters, digits, '-', '_', '.'; at most 64)") }
    }

    /// Bytes per second of "20 MiB/s", "500 KiB/s", "1 GiB/s", "800 B/s" (the "/s" optional).
    static func parseRate(_ text: String) -> Int64? {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("/s") { t.removeLast(2) }
        let units: [(String, Int64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        for (unit, factor) in units where t.hasSuffix(unit) {
            let number = t.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
            guard let n = Double(number), n > 0, n * Double(factor) < 1e15 else { return nil }
            return max(1, Int64(n * Double(factor)))
        }
        return nil
    }

    /// The node named `name`, or nil.
    public func node(_ name: String) -> Node? { nodes[name] }
}

extension CoordinatorConfiguration {
    /// Reads the hub's configuration file: `[coordinator]` (listen address, certificate, key,
    /// CA, revocation list, database, lease timing) and the site. Relative paths are relative
    /// to the file's folder. Any unknown key or impossible value is refused, naming file, line
    /// and key. With `coordinatorOnly`, a file of only a `[coordinator]` table (a new hub's,
    /// before `hub restore` brings the site) is read with an empty site; any other table is
    /// still read and checked in full.
    public static func load(_ path: String, coordinatorOnly: Bool = false) throws -> CoordinatorConfiguration {
        let file = try ConfigFile(path: path)
        let top = file.top
        guard let c = try top.table("coordinator") else {
            throw top.error(nil, "missing table [coordinator] (certificate, key, ca, database, listen)")
        }
        var config = CoordinatorConfiguration(
            certificate: try c.requiredFile("certificate"), privateKey: try c.requiredFile("key"),
            caCertificate: try c.requiredFile("ca"), revocationList: try c.string("revoked").map(file.resolve),
            database: file.resolve(try c.requiredString("database")),
            site: SiteConfiguration(nodes: []))
        if let listen = try c.string("listen") {
            (config.host, config.port) = try HostPort.parse(listen, key: "listen", table: c)
        }
        if let level: Logger.Level = try c.choice("log_level") { config.logLevel = level }
        if let v = try c.int("heartbeat_seconds") {
            guard (1...300).contains(v) else { throw c.error("heartbeat_seconds", "\(v) is outside 1...300") }
            config.heartbeatSeconds = v
        }
        if let v = try c.double("lease_seconds") {
            guard (5...3600).contains(v) else { throw c.error("lease_seconds", "\(v) is outside 5...3600") }
            config.leaseSeconds = v
        }
        if let v = try c.double("stall_seconds") {
            guard v >= config.leaseSeconds else {
                throw c.error("stall_seconds", "\(v) is shorter than lease_seconds (\(config.leaseSeconds))")
            }
            config.stallSeconds = v
        }
        if let key = try c.string("ticket_key") {
            config.ticketKey = file.resolve(key)
            do { _ = try Ed25519PEM.readPrivateKey(config.ticketKey!) } catch {
                throw c.error("ticket_key", "'\(config.ticketKey!)' is not an Ed25519 private key: \(error)")
            }
        }
        if c.keys.contains("ticket_hours") {
            _ = try c.int("ticket_hours")
            throw c.error(
                "ticket_hours",
                "is no longer set: a ticket lives twice lease_seconds and each renewal brings a fresh one")
        }
        if let key = try c.string("purge_key") {
            let path = file.resolve(key)
            do { _ = try Ed25519PEM.readPrivateKey(path) } catch {
                throw c.error("purge_key", "'\(path)' is not an Ed25519 private key: \(error)")
            }
            config.purgeKey = path
        }
        if let v = try c.double("inventory_missing_max") {
            guard (0...1).contains(v) else { throw c.error("inventory_missing_max", "\(v) is outside 0...1") }
            config.inventoryMissingMax = v
        }
        if let v = try c.int("task_history_days") {
            guard (1...36_500).contains(v) else { throw c.error("task_history_days", "\(v) is outside 1...36500") }
            config.taskHistoryDays = v
        }
        if let v = try c.int("event_history_days") {
            guard (1...36_500).contains(v) else { throw c.error("event_history_days", "\(v) is outside 1...36500") }
            config.eventHistoryDays = v
        }
        if let v = try c.int("run_history_days") {
            guard (1...36_500).contains(v) else { throw c.error("run_history_days", "\(v) is outside 1...36500") }
            config.runHistoryDays = v
        }
        if let v = try c.double("retry_seconds") {
            guard (0...3600).contains(v) else { throw c.error("retry_seconds", "\(v) is outside 0...3600") }
            config.retrySeconds = v
        }
        config.limits = try ListenerLimits.read(c)
        config.siteFile = path
        for key in try c.strings("trusted_signing_keys") ?? [] {
            let resolved = file.resolve(key)
            do { _ = try Ed25519PEM.readPublicKey(resolved) } catch {
                throw c.error("trusted_signing_keys", "'\(resolved)' is not an Ed25519 public key: \(error)")
            }
            config.trustedSigningKeys.append(resolved)
        }
        if let folder = try c.string("self_backup") {
            var settings = SelfBackupSettings(folder: file.resolve(folder))
            guard settings.folder.hasPrefix("/") else {
                throw c.error("self_backup", "'\(folder)' is not a folder path")
            }
            if let text = try c.string("self_backup_every") {
                let seconds: TimeInterval
                do { seconds = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                    throw c.error("self_backup_every", "'\(text)' is not a duration such as \"1h\" (\(error.message))")
                }
                guard (60...86400).contains(seconds) else {
                    throw c.error("self_backup_every", "'\(text)' is outside 1 minute...1 day")
                }
                settings.everySeconds = seconds
            }
            if let n = try c.int("self_backup_keep") {
                guard (1...100).contains(n) else { throw c.error("self_backup_keep", "\(n) is outside 1...100") }
                settings.keep = n
            }
            config.selfBackup = settings
        } else {
            for key in ["self_backup_every", "self_backup_keep"] where c.keys.contains(key) {
                throw c.error(key, "is set, but self_backup (the snapshot folder) is not")
            }
        }
        try c.finish()
        if let d = try top.table("dashboard") { config.dashboard = try DashboardSettings.read(d, file: file) }
        if coordinatorOnly && top.keys.allSatisfy({ ["coordinator", "dashboard"].contains($0) }) { return config }
        config.site = try SiteConfiguration.read(top)
        try top.finish()
        return config
    }
}
