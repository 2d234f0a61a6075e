import BackupCore

/// Where a task stands (see `Protocol/task-lifecycle.md`). The raw value is the wire's
/// spelling; a new state takes a new API major, so decoders refuse one they do not know.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case queued, leased, succeeded, failed, cancelled

    /// Whether the task is finished for good.
    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Error codes travel as their spelling.
extension BackupError.Code: Codable {}
