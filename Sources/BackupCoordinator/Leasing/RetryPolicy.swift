import BackupCore
import BackupProtocol

/// Whether a failed task is tried again, decided by the coordinator from the failure's code
/// alone, in one table (documented in `Protocol/task-lifecycle.md`; a test holds the two
/// together). A code the table does not know is permanent: a new failure is not retried until
/// someone decides it should be.
public struct RetryRule: Sendable, Equatable {
    /// Whether another attempt may succeed where this one failed.
    public var retryable: Bool
    /// Hand-outs allowed in all, counting the first.
    public var maxAttempts: Int

    public static let permanent = RetryRule(retryable: false, maxAttempts: 1)
    public static func retry(_ attempts: Int) -> RetryRule { RetryRule(retryable: true, maxAttempts: attempts) }
}

public enum RetryPolicy {
    /// code → rule. Transient causes (a full disk being cleaned, a peer rebooting, a stall, a
    /// lost lease, a tool that failed on a busy repository) are retried; what another attempt
    /// cannot change (a source the agent does not allow or that is missing, a refused order,
    /// a hostile archive, a bad configuration) is not.
    public static let table: [BackupError.Code: RetryRule] = [
        .diskFull: .retry(3),
        .peerUnreachable: .retry(5),
        .busy: .retry(5),
        .stalled: .retry(3),
        .noProgress: .retry(3),
        .leaseLost: .retry(3),
        .leaseExpired: .retry(3),
        .coordinatorUnreachable: .retry(3),
        .io: .retry(3),
        .toolFailed: .retry(3),
        .sourceChanged: .retry(3),
        .storeMarker: .retry(3),
        .bodyShort: .retry(3),
        .mutantTransfer: .retry(3),
        .senderCopyDiffers: .retry(2),
        .internal: .retry(3),
        .taskFailed: .retry(3),
        .sourceInvalid: .permanent,
        .refused: .permanent,
        .toolMissing: .permanent,
        .configInvalid: .permanent,
        .invalidArgument: .permanent,
        .regression: .permanent,
        .hostileEntry: .permanent,
        .archiveCorrupt: .permanent,
        .archiveTruncated: .permanent,
        .sidecarInvalid: .permanent,
        .notFound: .permanent,
        .noArtifact: .permanent,
        .existsDifferent: .permanent,
        .ticketUsed: .permanent,
        .ticketStale: .permanent,
        .notAPeer: .permanent,
        .agentTooOld: .permanent,
    ]

    /// The rule for `code`: the table's, else permanent.
    public static func rule(for code: BackupError.Code) -> RetryRule { table[code] ?? .permanent }
}
