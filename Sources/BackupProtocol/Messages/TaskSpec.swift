import BackupCore

/// What a task asks, one case per kind with what that kind needs: the typed view of
/// ``TaskInfo``'s optional fields. The JSON keeps those fields (so `/v1` stays compatible); an
/// agent switches over this instead of unwrapping optionals, and a task missing what its kind
/// needs is refused naming the field.
public enum TaskSpec: Sendable, Equatable {
    /// Back up one source (a Trac environment with its paired svn repository, if any).
    case backup(SourceDefinition)
    /// Verify the named copies (store-relative paths), or every copy when nil.
    case verify(paths: [String]?)
    /// List the store.
    case inventory
    /// Delete exactly the copies of the signed order (`scm-backup-purge-order/1`).
    case purge(order: String)
    /// Move one artifact between two nodes, with its ticket.
    case transfer(TransferOrder)
    /// Read artifacts from copies on other nodes into scratch and restore them on this node.
    case recover(RecoverOrder)
}

extension TaskInfo {
    /// The task's payload by kind; throws `invalid-argument` naming what is missing.
    public func spec() throws -> TaskSpec {
        switch kind {
        case .backup:
            guard let definition else {
                throw BackupError(
                    .invalidArgument,
                    "Backup task \(id) carries no source definition; the coordinator must send one.")
            }
            return .backup(definition)
        case .verify:
            return .verify(paths: artifacts)
        case .inventory:
            return .inventory
        case .purge:
            guard let purgeOrder else {
                throw BackupError(.refused, "Purge task \(id) carries no signed purge order; nothing was deleted.")
            }
            return .purge(order: purgeOrder)
        case .transfer:
            guard let transfer, transfer.ticket != nil else {
                throw BackupError(.invalidArgument, "Transfer task \(id) carries no order or ticket.")
            }
            return .transfer(transfer)
        case .recover:
            guard let recover, !recover.pieces.isEmpty else {
                throw BackupError(.invalidArgument, "Recover task \(id) carries no recover order.")
            }
            return .recover(recover)
        }
    }
}
