import BackupCore

/// The agent service: runs backup, transfer, verify, purge and inventory tasks on one node.
///
/// The service itself arrives with the control plane; today every task it will run is
/// available locally through `BackupCore` (see `Store`).
public enum AgentRole {
    /// The store operations an agent performs, all of which live in `BackupCore`.
    public typealias LocalStore = Store
}
