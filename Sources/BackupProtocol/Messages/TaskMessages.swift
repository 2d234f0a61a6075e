import Foundation

/// What a task asks an agent to do. Tasks name sources, never paths: an agent resolves a
/// source name through its own configuration, so no message can make it touch another path.
public enum TaskKind: String, Codable, Sendable, CaseIterable {
    case backup, verify, inventory
}

/// `POST /v1/tasks` (admin): queue a task for one node.
public struct SubmitTaskRequest: Codable, Sendable, Equatable {
    public var kind: TaskKind
    /// The node (agent) that runs it.
    public var node: String
    /// The source, for `backup`; absent for whole-store tasks.
    public var source: String?

    public init(kind: TaskKind, node: String, source: String? = nil) {
        self.kind = kind
        self.node = node
        self.source = source
    }
}

/// A task as the coordinator lists it and hands it out.
public struct TaskInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var kind: TaskKind
    public var node: String
    public var source: String?
    /// queued, leased, succeeded, failed, cancelled.
    public var state: String
    public var attempts: Int
    public var fencingToken: UInt64
    public var leaseExpiresAt: Date?
    public var lastError: String?
    public var createdAt: Date

    public init(
        id: Int64, kind: TaskKind, node: String, source: String?, state: String, attempts: Int, fencingToken: UInt64,
        leaseExpiresAt: Date?, lastError: String?, createdAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.node = node
        self.source = source
        self.state = state
        self.attempts = attempts
        self.fencingToken = fencingToken
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
        self.createdAt = createdAt
    }
}

/// `POST /v1/tasks/lease` (agent): wait up to `waitSeconds` (at most 30) for the next task.
public struct LeaseRequest: Codable, Sendable, Equatable {
    public var waitSeconds: Int
    public init(waitSeconds: Int) { self.waitSeconds = waitSeconds }
}

/// The answer to a lease request: a task with its lease, or none when the wait ran out.
public struct LeaseResponse: Codable, Sendable, Equatable {
    public var task: TaskInfo?
    public init(task: TaskInfo?) { self.task = task }
}

/// `POST /v1/tasks/{id}/renew` (the holder).
public struct RenewRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    /// Whether the task moved on since the last renewal (bytes, a step).
    public var progressed: Bool
    public init(fencingToken: UInt64, progressed: Bool) {
        self.fencingToken = fencingToken
        self.progressed = progressed
    }
}

/// `POST /v1/tasks/{id}/result` (the holder): success without `error`, failure with it.
public struct ResultRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    public var error: String?
    /// A one-line summary of what was done (artifact made, copies verified).
    public var detail: String?
    public init(fencingToken: UInt64, error: String?, detail: String? = nil) {
        self.fencingToken = fencingToken
        self.error = error
        self.detail = detail
    }
}

/// `POST /v1/tasks/{id}/handback` (the holder, stopping cleanly): the task returns to the queue
/// without counting an attempt.
public struct HandBackRequest: Codable, Sendable, Equatable {
    public var fencingToken: UInt64
    public init(fencingToken: UInt64) { self.fencingToken = fencingToken }
}
