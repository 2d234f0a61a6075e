import BackupCore
import Foundation

/// The dashboard's `/sources/NODE/SOURCE` as JSON (`Accept: application/json`): the source's
/// line of `GET /v1/status`, its artifacts with every copy (newest first, at most
/// ``SourcePage/artifactLimit``), and the last runs that included it.
public struct SourcePage: Codable, Sendable, Equatable {
    public static let artifactLimit = 1000
    public var status: SourceStatus
    public var artifacts: [ArtifactInfo]
    public var runs: [RunInfo]

    public init(status: SourceStatus, artifacts: [ArtifactInfo], runs: [RunInfo]) {
        self.status = status
        self.artifacts = artifacts
        self.runs = runs
    }
}

/// The dashboard's `/nodes/NAME` as JSON: the node as `GET /v1/nodes` lists it, its disk
/// samples (oldest first, from the `sample` table), when the disk fills at the pace of the
/// last two weeks (nil when it does not shrink), and its recent tasks (newest first).
public struct NodePage: Codable, Sendable, Equatable {
    public struct DiskSample: Codable, Sendable, Equatable {
        public var at: Date
        public var free: Double
        public var total: Double?
        public init(at: Date, free: Double, total: Double?) {
            self.at = at
            self.free = free
            self.total = total
        }
    }
    public var node: NodeStatus
    public var disk: [DiskSample]
    public var projectedFull: Date?
    public var tasks: [TaskInfo]

    public init(node: NodeStatus, disk: [DiskSample], projectedFull: Date?, tasks: [TaskInfo]) {
        self.node = node
        self.disk = disk
        self.projectedFull = projectedFull
        self.tasks = tasks
    }
}
