import Foundation

/// `POST /v1/agents/register`: an agent says who it is (its name comes from its certificate).
public struct RegisterRequest: Codable, Sendable, Equatable {
    /// The agent's scm-backup version.
    public var version: String
    /// The agent's store folder.
    public var storePath: String
    /// Bytes of the store's file system, and of those free.
    public var diskTotal: Int64
    public var diskFree: Int64
    /// The source kinds this agent can back up (its tools are there).
    public var kinds: [String]
    /// The agent's clock when it sent this, in seconds since 1970 (fractions included): the
    /// coordinator records the node's clock offset from it.
    public var agentClock: Double?
    /// The port of the agent's data port (HTTPS, mutual TLS), when it runs one; other agents
    /// reach it at the node's addresses from the site configuration.
    public var dataPort: Int?
    /// The agent's `source_roots` (resolved where they exist) and the names of the pre-backup
    /// steps its agent.toml defines: information only, so that the coordinator can show each
    /// source its agent would refuse before its first night fails. The agent decides anyway.
    public var sourceRoots: [String]?
    public var preBackupSteps: [String]?

    public init(
        version: String, storePath: String, diskTotal: Int64, diskFree: Int64, kinds: [String],
        agentClock: Double? = nil, dataPort: Int? = nil, sourceRoots: [String]? = nil, preBackupSteps: [String]? = nil
    ) {
        self.sourceRoots = sourceRoots
        self.preBackupSteps = preBackupSteps
        self.dataPort = dataPort
        self.version = version
        self.storePath = storePath
        self.diskTotal = diskTotal
        self.diskFree = diskFree
        self.kinds = kinds
        self.agentClock = agentClock
    }
}

/// The answer to register and heartbeat.
public struct RegisterResponse: Codable, Sendable, Equatable {
    /// How often the agent should send a heartbeat.
    public var heartbeatSeconds: Int
    /// The coordinator's clock, so the agent can measure its offset.
    public var serverTime: Date
    /// Serials the agent must refuse (the site's revocation list).
    public var revokedSerials: [String]
    /// Tasks the agent may run at once (its node's `max_tasks`); absent means 1.
    public var maxTasks: Int?
    /// The epoch of the coordinator's catalog: a result the agent journalled for another
    /// catalog (one lost, restored or rebuilt since) is never sent to this one as its task's.
    public var catalogEpoch: String?
    /// The node's scheduled sources and their schedules, kept by the agent for when the hub is
    /// away (``FallbackPlan``); absent from older coordinators.
    public var fallback: FallbackPlan?

    public init(
        heartbeatSeconds: Int, serverTime: Date, revokedSerials: [String], maxTasks: Int? = nil,
        catalogEpoch: String? = nil, fallback: FallbackPlan? = nil
    ) {
        self.fallback = fallback
        self.catalogEpoch = catalogEpoch
        self.maxTasks = maxTasks
        self.heartbeatSeconds = heartbeatSeconds
        self.serverTime = serverTime
        self.revokedSerials = revokedSerials
    }
}

/// `POST /v1/agents/heartbeat`.
public struct HeartbeatRequest: Codable, Sendable, Equatable {
    public var diskFree: Int64
    /// As in ``RegisterRequest/agentClock``.
    public var agentClock: Double?
    /// Bytes the store's trash (purged copies waiting for `trash_hours`) and its quarantine
    /// (mutants kept for review) hold: on the disk, outside the catalog's copies. Absent from
    /// older agents.
    public var trashBytes: Int64?
    public var quarantineBytes: Int64?
    public init(diskFree: Int64, agentClock: Double? = nil, trashBytes: Int64? = nil, quarantineBytes: Int64? = nil) {
        self.diskFree = diskFree
        self.agentClock = agentClock
        self.trashBytes = trashBytes
        self.quarantineBytes = quarantineBytes
    }
}

/// One node as `GET /v1/nodes` lists it.
public struct NodeStatus: Codable, Sendable, Equatable {
    public var name: String
    public var role: String
    public var version: String?
    public var storePath: String?
    public var diskTotal: Int64?
    public var diskFree: Int64?
    public var kinds: [String]
    public var registeredAt: Date?
    public var lastHeartbeatAt: Date?
    /// Whether a heartbeat arrived within three heartbeat intervals.
    public var online: Bool
    /// Its roles in the site configuration (server, backup, hub); absent for a node that is no
    /// longer configured.
    public var roles: [String]?
    /// The agent's clock minus the coordinator's at its last heartbeat, in seconds (the
    /// network delay, milliseconds on a LAN, is not subtracted).
    public var clockOffsetSeconds: Double?
    /// Its data port, when it runs one.
    public var dataPort: Int?
    /// Why the catalog holds this node's last complete listing instead of applying it (too
    /// many copies missing at once: an unmounted disk?); nil when nothing is held.
    public var hold: String?
    /// As the agent last reported them (``HeartbeatRequest/trashBytes``).
    public var trashBytes: Int64?
    public var quarantineBytes: Int64?
    public init(
        name: String, role: String, version: String?, storePath: String?, diskTotal: Int64?, diskFree: Int64?,
        kinds: [String],
        registeredAt: Date?, lastHeartbeatAt: Date?, online: Bool, roles: [String]? = nil,
        clockOffsetSeconds: Double? = nil, dataPort: Int? = nil, hold: String? = nil, trashBytes: Int64? = nil,
        quarantineBytes: Int64? = nil
    ) {
        self.trashBytes = trashBytes
        self.quarantineBytes = quarantineBytes
        self.dataPort = dataPort
        self.hold = hold
        self.roles = roles
        self.clockOffsetSeconds = clockOffsetSeconds
        self.name = name
        self.role = role
        self.version = version
        self.storePath = storePath
        self.diskTotal = diskTotal
        self.diskFree = diskFree
        self.kinds = kinds
        self.registeredAt = registeredAt
        self.lastHeartbeatAt = lastHeartbeatAt
        self.online = online
    }
}

/// Every error response's body: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorResponse: Codable, Sendable, Equatable {
    public struct Body: Codable, Sendable, Equatable {
        /// A stable code (see `Protocol/README.md`), also the metric label.
        public var code: String
        /// A sentence naming what is wrong and, where known, what to do.
        public var message: String
        /// For an unexpected error (`internal`): the id the server logged it under.
        public var id: String?
    }
    public var error: Body

    /// The header that repeats an error answer as base64 of this JSON, for answers without a
    /// body (a refused `HEAD` on a data port).
    public static let header = "SCM-Error"

    public init(code: String, message: String, id: String? = nil) {
        error = Body(code: code, message: message, id: id)
    }
}

/// JSON coding as the wire uses it: ISO 8601 dates, sorted keys.
public enum WireJSON {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }

    /// An instant as the wire writes it (ISO 8601, UTC), for messages and reasons.
    public static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    /// A decoding error as a phrase naming the field at fault.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? "the body" : "field \"\(p)\""
        }
        switch error {
        case .keyNotFound(let key, let c):
            let parent = c.codingPath.map(\.stringValue).joined(separator: ".")
            return "field \"\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)\" is missing"
        case .typeMismatch(let type, let c): return "\(path(c)) is not a \(type)"
        case .valueNotFound(_, let c): return "\(path(c)) is null"
        case .dataCorrupted(let c): return "\(path(c)) is not valid JSON: \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
