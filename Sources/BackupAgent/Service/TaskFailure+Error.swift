import BackupClient
import BackupCore
import BackupProtocol

extension TaskFailure {
    /// The failure an agent reports for `error`: its registered code where it has one, so that
    /// the coordinator's retry table can judge it (a peer's refusal keeps the peer's code).
    init(_ error: any Error) {
        switch error {
        case let error as BackupError:
            self.init(code: error.code, message: error.description)
        case let error as PeerUnreachable:
            self.init(code: .peerUnreachable, message: error.description)
        case let error as CoordinatorUnreachable:
            self.init(code: .coordinatorUnreachable, message: error.description)
        case let error as TransferRunner.Stalled:
            self.init(code: .stalled, message: error.description)
        case let error as LeaseLost:
            self.init(code: .leaseLost, message: error.description)
        default:
            self.init(code: .internal, message: "\(error)")
        }
    }
}

/// The agent stopped a task because its lease is gone (refused or expired): the coordinator
/// may have handed it to another agent.
struct LeaseLost: Error, CustomStringConvertible {
    var task: Int64
    var reason: String
    var description: String { "The lease of task \(task) was lost (\(reason)); the work was stopped." }
}
