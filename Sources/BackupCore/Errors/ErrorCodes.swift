/// The one registry of error codes: every code a store operation, a task, the coordinator, a
/// data port, a listener or the CLI reports, with the HTTP status it is answered with where it
/// travels over HTTP. A code doubles as the wire error code and the metric label, so codes are
/// never renamed; each one is documented in `Protocol/` (a test checks that).
///
/// Where a code is answered over HTTP the registry's status is its default; a handler may answer
/// a code with another status where the same cause means another thing (`unknown-node` is 403
/// for a caller, 422 for a task naming that node).
extension BackupError.Code {
    // MARK: Identity and requests (every listener)

    /// No client certificate reached the HTTP layer.
    public static let noCertificate = Self(rawValue: "no-certificate")
    /// The certificate names no node or no scm-backup role.
    public static let unknownIdentity = Self(rawValue: "unknown-identity")
    /// The certificate's serial is in the site's revocation list.
    public static let certificateRevoked = Self(rawValue: "certificate-revoked")
    /// The caller's role may not call this endpoint.
    public static let wrongRole = Self(rawValue: "wrong-role")
    /// A body that does not decode; the message names the field.
    public static let malformedJSON = Self(rawValue: "malformed-json")
    /// A body over its limit.
    public static let bodyTooLarge = Self(rawValue: "body-too-large")
    /// A path under an API major this server does not speak.
    public static let unsupportedVersion = Self(rawValue: "unsupported-version")
    /// A path no endpoint serves.
    public static let unknownEndpoint = Self(rawValue: "unknown-endpoint")
    /// An error nobody expected; the message names what failed (on a listener without client
    /// authentication only "see log" and an id).
    public static let `internal` = Self(rawValue: "internal")
    /// A listener's connection caps closed a connection.
    public static let tooManyConnections = Self(rawValue: "too-many-connections")
    /// A TLS handshake did not finish in time.
    public static let handshakeTimeout = Self(rawValue: "handshake-timeout")
    /// A connection's first request head did not arrive in time.
    public static let headTimeout = Self(rawValue: "head-timeout")
    /// The dashboard off loopback: neither an operator's certificate nor a login came.
    public static let loginRequired = Self(rawValue: "login-required")
    /// The dashboard: a login with an unknown user or a wrong password.
    public static let loginFailed = Self(rawValue: "login-failed")
    /// The dashboard: too many failed logins from one address in a minute.
    public static let tooManyLogins = Self(rawValue: "too-many-logins")

    // MARK: The coordinator

    /// A node the site configuration does not name.
    public static let unknownNode = Self(rawValue: "unknown-node")
    /// An agent endpoint called before registering.
    public static let notRegistered = Self(rawValue: "not-registered")
    /// A task id the catalog does not know.
    public static let unknownTask = Self(rawValue: "unknown-task")
    /// A backup of a source the site does not give that node.
    public static let unknownSource = Self(rawValue: "unknown-source")
    /// A copy the catalog does not list on that node.
    public static let unknownArtifact = Self(rawValue: "unknown-artifact")
    /// A purge naming a copy that failed verification: kept for quarantine and repair.
    public static let mutantCopy = Self(rawValue: "mutant-copy")
    /// A verify by age or budget that finds nothing to verify.
    public static let nothingDue = Self(rawValue: "nothing-due")
    /// A run id the catalog does not know.
    public static let unknownRun = Self(rawValue: "unknown-run")
    /// A run that selects no source (none configured, or none by that node and name).
    public static let nothingToRun = Self(rawValue: "nothing-to-run")
    /// A `purge release` of a source whose newest backup is not flagged as a regression.
    public static let notFlagged = Self(rawValue: "not-flagged")
    /// A queued task whose node, source or pairing a reloaded configuration no longer has.
    public static let configRemoved = Self(rawValue: "config-removed")
    /// A task that ran past its kind's `max_duration`: the coordinator ended its lease.
    public static let timeout = Self(rawValue: "timeout")
    /// A transfer submitted as a task instead of through `POST /v1/transfers`.
    public static let useTransfers = Self(rawValue: "use-transfers")
    /// A transfer from a node to itself.
    public static let sameNode = Self(rawValue: "same-node")
    /// A transfer between two nodes no pairing joins.
    public static let notPaired = Self(rawValue: "not-paired")
    /// The coordinator has no key to sign transfer tickets with.
    public static let noTicketKey = Self(rawValue: "no-ticket-key")
    /// The coordinator has no key to sign purge orders with.
    public static let noPurgeKey = Self(rawValue: "no-purge-key")
    /// SQLite found the catalog's pages damaged while the hub ran: it stops (``CatalogDamage``).
    public static let catalogDamaged = Self(rawValue: "catalog-damaged")
    /// A task whose kind or format the leasing agent's version does not know.
    public static let agentTooOld = Self(rawValue: "agent-too-old")
    /// The coordinator cannot be reached (the CLI, an agent).
    public static let coordinatorUnreachable = Self(rawValue: "coordinator-unreachable")

    // MARK: Leases (see TaskLifecycle.Refusal)

    public static let taskNotLeasable = Self(rawValue: "task-not-leasable")
    public static let staleFencingToken = Self(rawValue: "stale-fencing-token")
    public static let notLeaseHolder = Self(rawValue: "not-lease-holder")
    public static let leaseExpired = Self(rawValue: "lease-expired")
    public static let noProgress = Self(rawValue: "no-progress")
    public static let taskFinished = Self(rawValue: "task-finished")
    public static let fencingTokenNotIncreasing = Self(rawValue: "fencing-token-not-increasing")
    /// A result sent again for a lease whose result was applied (answered 200, not an error).
    public static let resultAlreadyApplied = Self(rawValue: "result-already-applied")

    // MARK: Task failures an agent reports

    /// The agent lost the task's lease and stopped working on it.
    public static let leaseLost = Self(rawValue: "lease-lost")
    /// A peer's data port cannot be reached.
    public static let peerUnreachable = Self(rawValue: "peer-unreachable")
    /// A transfer made no progress within the stall limit.
    public static let stalled = Self(rawValue: "stalled")
    /// A failure reported by an agent older than typed failures (a bare string).
    public static let taskFailed = Self(rawValue: "task-failed")

    // MARK: Data ports (Protocol/transfer.md)

    public static let noTicket = Self(rawValue: "no-ticket")
    public static let ticketMalformed = Self(rawValue: "ticket-malformed")
    public static let ticketForged = Self(rawValue: "ticket-forged")
    public static let ticketExpired = Self(rawValue: "ticket-expired")
    public static let ticketOtherArtifact = Self(rawValue: "ticket-other-artifact")
    public static let ticketMisaddressed = Self(rawValue: "ticket-misaddressed")
    public static let ticketWrongPeer = Self(rawValue: "ticket-wrong-peer")
    public static let ticketUsed = Self(rawValue: "ticket-used")
    public static let ticketStale = Self(rawValue: "ticket-stale")
    public static let notAPeer = Self(rawValue: "not-a-peer")
    public static let noTicketLedger = Self(rawValue: "no-ticket-ledger")
    public static let noRevocationList = Self(rawValue: "no-revocation-list")
    public static let badPath = Self(rawValue: "bad-path")
    public static let badRange = Self(rawValue: "bad-range")
    public static let rangeMismatch = Self(rawValue: "range-mismatch")
    public static let bodyTooLong = Self(rawValue: "body-too-long")
    public static let bodyShort = Self(rawValue: "body-short")
    public static let mutantTransfer = Self(rawValue: "mutant-transfer")
    public static let existsDifferent = Self(rawValue: "exists-different")
    public static let busy = Self(rawValue: "busy")
    public static let noArtifact = Self(rawValue: "no-artifact")
    public static let senderCopyDiffers = Self(rawValue: "sender-copy-differs")

    // MARK: Purge orders (Protocol/purge.md)

    public static let orderMalformed = Self(rawValue: "order-malformed")
    public static let orderForged = Self(rawValue: "order-forged")
    public static let orderMisaddressed = Self(rawValue: "order-misaddressed")
    public static let orderStale = Self(rawValue: "order-stale")
    public static let orderExpired = Self(rawValue: "order-expired")

    // MARK: Artifact receipts (Protocol/store.md)

    public static let receiptMalformed = Self(rawValue: "receipt-malformed")
    public static let receiptForged = Self(rawValue: "receipt-forged")
    /// A receipt that verifies but is not of the artifact beside it (path, size or digest).
    public static let receiptMismatch = Self(rawValue: "receipt-mismatch")

    // MARK: Recovery through the site (Protocol/transfer.md)

    /// A source name several origins or kinds share, given without `--origin` or `--kind`.
    public static let ambiguousSource = Self(rawValue: "ambiguous-source")
    /// A recovery target outside the node's `recovery_roots` (or a node without any): refused
    /// by the node's agent before a byte moves.
    public static let outsideRecoveryRoots = Self(rawValue: "outside-recovery-roots")
}

/// Every registered code with its default HTTP status (nil where it never travels as an HTTP
/// answer: a connection closed by a listener, a task failure, a CLI error).
public enum ErrorCodes {
    public struct Entry: Sendable {
        public var code: BackupError.Code
        public var status: Int?
    }

    public static let all: [Entry] = [
        // BackupError's own codes: store operations, tasks, the CLI.
        .init(code: .sourceInvalid, status: 422), .init(code: .sourceChanged, status: 409),
        .init(code: .io, status: 500), .init(code: .diskFull, status: 507),
        .init(code: .archiveCorrupt, status: 422), .init(code: .archiveTruncated, status: 422),
        .init(code: .hostileEntry, status: 422), .init(code: .sidecarInvalid, status: 422),
        .init(code: .storeMarker, status: 503), .init(code: .invalidArgument, status: 400),
        .init(code: .toolMissing, status: 500), .init(code: .toolFailed, status: 500),
        .init(code: .regression, status: 409), .init(code: .refused, status: 409),
        .init(code: .configInvalid, status: 500), .init(code: .notFound, status: 404),
        .init(code: .cancelled, status: nil),
        // Identity and requests.
        .init(code: .noCertificate, status: 401), .init(code: .unknownIdentity, status: 403),
        .init(code: .certificateRevoked, status: 403), .init(code: .wrongRole, status: 403),
        .init(code: .malformedJSON, status: 400), .init(code: .bodyTooLarge, status: 413),
        .init(code: .unsupportedVersion, status: 404), .init(code: .unknownEndpoint, status: 404),
        .init(code: .internal, status: 500), .init(code: .tooManyConnections, status: nil),
        .init(code: .handshakeTimeout, status: nil), .init(code: .headTimeout, status: nil),
        .init(code: .loginRequired, status: 401), .init(code: .loginFailed, status: 401),
        .init(code: .tooManyLogins, status: 429),
        // The coordinator.
        .init(code: .unknownNode, status: 403), .init(code: .notRegistered, status: 409),
        .init(code: .unknownTask, status: 404), .init(code: .unknownSource, status: 422),
        .init(code: .unknownArtifact, status: 422), .init(code: .mutantCopy, status: 422),
        .init(code: .nothingDue, status: 422), .init(code: .useTransfers, status: 422),
        .init(code: .unknownRun, status: 404), .init(code: .nothingToRun, status: 422),
        .init(code: .notFlagged, status: 422),
        .init(code: .timeout, status: nil), .init(code: .configRemoved, status: nil),
        .init(code: .sameNode, status: 422), .init(code: .notPaired, status: 422),
        .init(code: .noTicketKey, status: 503), .init(code: .noPurgeKey, status: 503),
        .init(code: .catalogDamaged, status: 503),
        .init(code: .agentTooOld, status: nil), .init(code: .coordinatorUnreachable, status: nil),
        // Leases.
        .init(code: .taskNotLeasable, status: 409), .init(code: .staleFencingToken, status: 409),
        .init(code: .notLeaseHolder, status: 409), .init(code: .leaseExpired, status: 409),
        .init(code: .noProgress, status: 409), .init(code: .taskFinished, status: 409),
        .init(code: .fencingTokenNotIncreasing, status: 409), .init(code: .resultAlreadyApplied, status: nil),
        // Task failures.
        .init(code: .leaseLost, status: nil), .init(code: .peerUnreachable, status: nil),
        .init(code: .stalled, status: nil),
        .init(code: .taskFailed, status: nil),
        // Data ports.
        .init(code: .noTicket, status: 401), .init(code: .ticketMalformed, status: 403),
        .init(code: .ticketForged, status: 403), .init(code: .ticketExpired, status: 403),
        .init(code: .ticketOtherArtifact, status: 403), .init(code: .ticketMisaddressed, status: 403),
        .init(code: .ticketWrongPeer, status: 403), .init(code: .ticketUsed, status: 409),
        .init(code: .ticketStale, status: 409), .init(code: .notAPeer, status: 403),
        .init(code: .noTicketLedger, status: 503), .init(code: .noRevocationList, status: 503),
        .init(code: .badPath, status: 400), .init(code: .badRange, status: 416),
        .init(code: .rangeMismatch, status: 416), .init(code: .bodyTooLong, status: 413),
        .init(code: .bodyShort, status: 400), .init(code: .mutantTransfer, status: 422),
        .init(code: .existsDifferent, status: 409), .init(code: .busy, status: 503),
        .init(code: .noArtifact, status: 404), .init(code: .senderCopyDiffers, status: 409),
        // Purge orders.
        .init(code: .orderMalformed, status: 403), .init(code: .orderForged, status: 403),
        .init(code: .orderMisaddressed, status: 403), .init(code: .orderStale, status: 403),
        .init(code: .orderExpired, status: 403),
        // Receipts travel inside tickets and task answers; a refusal is logged or a task failure.
        .init(code: .receiptMalformed, status: nil), .init(code: .receiptForged, status: nil),
        .init(code: .receiptMismatch, status: nil),
        // Recovery through the site.
        .init(code: .ambiguousSource, status: 409), .init(code: .outsideRecoveryRoots, status: nil),
    ]

    private static let byCode = Dictionary(all.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })

    /// Whether `code` is registered.
    public static func isRegistered(_ code: BackupError.Code) -> Bool { byCode[code] != nil }

    /// The HTTP status `code` is answered with by default; 500 for a code without one.
    public static func status(of code: BackupError.Code) -> Int { byCode[code]?.status ?? 500 }
}
