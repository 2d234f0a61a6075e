import BackupCore
import BackupProtocol

/// The oldest agent version that can carry out each kind of task as this coordinator sends
/// it. An agent that registered an older version (or one that is not `MAJOR.MINOR.PATCH`) is
/// not given such a task: the task fails at once with `agent-too-old`, naming both versions,
/// so that it does not wait in the queue for an agent that will never run it right.
///
/// Purge and transfer tasks need 0.2.0: they carry signed purge orders and `ticket/2` tickets,
/// which agents reporting 0.1.0 may predate (an agent that purged by a bare path list must
/// never get one). Recover tasks need 0.3.0, the first agent that knows them (and checks its
/// `recovery_roots`).
public enum AgentRequirements {
    public static let minimumVersion: [TaskKind: String] = [
        .purge: "0.2.0", .transfer: "0.2.0", .recover: "0.3.0",
    ]

    /// Why `version` cannot run `kind`, or nil when it can.
    public static func refusal(kind: TaskKind, agentVersion version: String?) -> String? {
        guard let needed = minimumVersion[kind] else { return nil }
        if let have = version.flatMap(parse), let want = parse(needed), !have.lexicographicallyPrecedes(want) {
            return nil
        }
        return
            "a \(kind.rawValue) task needs agent version \(needed) or later; this agent registered version '\(AuditText.escape(version ?? "none", limit: 40))'"
    }

    static func parse(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return parts.compactMap { $0 }
    }
}
