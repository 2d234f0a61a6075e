import BackupCore
import Foundation

/// What an agent needs: how to reach the coordinator, its store, and the sources it may back
/// up. Tasks name sources; the agent resolves them here, so no task can make it read a path
/// that is not configured on the node itself.
public struct AgentConfiguration: Sendable {
    public var coordinator: CoordinatorEndpoint
    /// The agent's store folder (must carry its marker, or be new and empty).
    public var storePath: String
    /// The node's name: the common name of its certificate.
    public var node: String
    /// The sources this node may back up, by name.
    public var sources: [String: SourceSpec]
    /// How long a lease request waits on the coordinator. The default is 25 seconds.
    public var leaseWaitSeconds = 25
    /// The version reported at registration.
    public var version = "0.1.0"

    public init(coordinator: CoordinatorEndpoint, storePath: String, node: String, sources: [String: SourceSpec]) {
        self.coordinator = coordinator
        self.storePath = storePath
        self.node = node
        self.sources = sources
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
