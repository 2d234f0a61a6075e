import BackupCore
import BackupProtocol
import Foundation

/// One task's life cycle at the coordinator, as a value-type state machine with no I/O.
///
/// ```
///            lease                  complete(success)
///  queued ─────────▶ leased ─────────────────────────▶ succeeded
///    ▲                 │  │ complete(failure) / expire
///    │  retry left     │  ▼
///    └─────────────────┘ failed (no attempt left)        cancel: queued|leased ─▶ cancelled
/// ```
///
/// Every hand-out carries a fencing token larger than any before it (the coordinator's
/// counter); renewals and results must quote the current token and come from the holder, so
/// a late message from an expired lease is refused. A lease that is not renewed by its
/// expiry returns the task to the queue: nothing stays locked, nobody needs to unlock.
/// Renewing requires progress within `stallLimit`, so a hung transfer cannot keep its lease.
/// A lease handed to an agent that promised to confirm it (`LeaseRequest.confirms`) first runs
/// only for a short window; its first renewal confirms it and extends it to the full lease. An
/// unconfirmed lease that expires went to an agent that is gone (a long poll still open when
/// its process died): the task goes back at once without counting an attempt.
public struct TaskLifecycle: Sendable, Equatable, Codable {
    public typealias State = TaskState

    /// Why a message about a task was refused; the raw value is the wire error code.
    public enum Refusal: String, Error, Sendable, Equatable {
        case notLeasable = "task-not-leasable"
        case staleToken = "stale-fencing-token"
        case notHolder = "not-lease-holder"
        case expired = "lease-expired"
        case noProgress = "no-progress"
        case finished = "task-finished"
        case tokenNotIncreasing = "fencing-token-not-increasing"
        /// The holder sent the result of this lease again (re-sending its journal after a
        /// restart): it was applied once and is not applied twice. Never an error on the wire.
        case alreadyApplied = "result-already-applied"

        /// The registered error code (``ErrorCodes``).
        public var code: BackupError.Code { BackupError.Code(rawValue: rawValue) }

        /// A sentence for the error message.
        public var explanation: String {
            switch self {
            case .notLeasable: "it is not queued, so it cannot be leased"
            case .staleToken: "the fencing token belongs to an earlier lease; a newer lease holds the task"
            case .notHolder: "another agent holds its lease"
            case .expired: "the lease has expired; the task goes back to the queue"
            case .noProgress: "no progress was reported within the stall limit; the lease is not renewed"
            case .finished: "it is finished already"
            case .tokenNotIncreasing: "the fencing token does not exceed the previous one"
            case .alreadyApplied: "this result of this lease was applied already"
            }
        }
    }

    public private(set) var state: State = .queued
    /// The agent holding the lease, while leased.
    public private(set) var holder: String?
    /// The token of the current (or last) lease; 0 before the first.
    public private(set) var fencingToken: UInt64 = 0
    public private(set) var leaseExpiresAt: Date?
    /// When the current (or last) lease was handed out: what `max_duration` is counted from.
    public private(set) var leasedAt: Date?
    /// When the current (or last) lease ended: with a result, an expiry or a time-out.
    public private(set) var leaseEndedAt: Date?
    /// The lease's start in seconds since 1970 at full precision (the dates above are stored to
    /// the second), and the last lease's length from it: the task's own time.
    private var leasedAtSeconds: Double?
    public private(set) var leaseSeconds: Double?
    /// When the holder last reported progress (bytes moved, a step done).
    public private(set) var lastProgressAt: Date?
    /// Hand-outs so far.
    public private(set) var attempts = 0
    /// The reason of the last failure or expiry.
    public private(set) var lastError: String?
    /// The code of the last reported failure (nil for an expiry and before typed failures).
    public private(set) var lastErrorCode: BackupError.Code?
    /// After a reported failure, the task is not leased again before this moment (the retry
    /// delay doubles with every attempt); nil when it may go at once.
    public private(set) var notBefore: Date?
    /// Hand-outs allowed before the task fails for good. The default is 3.
    public let maxAttempts: Int
    /// The holder, token and body digest of the last result applied; the same again is
    /// ``Refusal/alreadyApplied``, a different body under that lease is refused as usual. Nil
    /// before the first result (and in life cycles stored before results were idempotent).
    public private(set) var lastResult: ResultMark?
    /// While the current lease waits for its confirming renewal, when it must come (the
    /// lease's expiry then); nil for a confirmed lease or one given without a window.
    public private(set) var confirmBy: Date?
    /// Leases in a row that went back unconfirmed; past `maxAttempts` such returns count as
    /// attempts again, so an agent that never confirms cannot keep a task going round forever.
    public private(set) var unconfirmedReturns: Int?

    /// Who sent a result, under which lease, with which body (SHA-256 of its canonical JSON).
    public struct ResultMark: Sendable, Equatable, Codable {
        public var agent: String
        public var token: UInt64
        public var digest: String?
    }

    public init(maxAttempts: Int = 3) {
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Hands the task to `agent` with `token`, which must exceed every earlier token; with
    /// `confirmWithin`, for at most that long until the agent's first renewal confirms it.
    public mutating func lease(
        to agent: String, token: UInt64, now: Date, duration: TimeInterval, confirmWithin: TimeInterval? = nil
    ) throws(Refusal) {
        guard state == .queued else { throw state.isFinal ? .finished : .notLeasable }
        guard notBefore.map({ now >= $0 }) ?? true else { throw .notLeasable }
        guard token > fencingToken else { throw .tokenNotIncreasing }
        notBefore = nil
        state = .leased
        holder = agent
        fencingToken = token
        leaseExpiresAt = now.addingTimeInterval(min(duration, confirmWithin ?? duration))
        confirmBy = confirmWithin == nil ? nil : leaseExpiresAt
        lastProgressAt = now
        leasedAt = now
        leasedAtSeconds = now.timeIntervalSince1970
        attempts += 1
    }

    /// Extends the lease of the holder quoting the current token. With `progressed` false the
    /// renewal is refused once `stallLimit` has passed since the last progress.
    public mutating func renew(
        by agent: String, token: UInt64, now: Date, duration: TimeInterval, progressed: Bool, stallLimit: TimeInterval
    ) throws(Refusal) {
        try checkHolder(agent, token: token, now: now)
        if progressed {
            lastProgressAt = now
        } else if let last = lastProgressAt, now.timeIntervalSince(last) > stallLimit {
            throw .noProgress
        }
        leaseExpiresAt = now.addingTimeInterval(duration)
        if confirmBy != nil {
            confirmBy = nil
            unconfirmedReturns = nil
        }
    }

    /// Records the holder's result. A failure returns the task to the queue while attempts are
    /// left, to be leased again after `retryDelay` seconds doubled for each attempt made before
    /// (10, 20, 40 s with the default; at most an hour).
    public mutating func complete(
        by agent: String, token: UInt64, now: Date, error: String?, retryDelay: TimeInterval = 0
    ) throws(Refusal) {
        try complete(
            by: agent, token: token, now: now, failure: error.map { TaskFailure(code: .taskFailed, message: $0) },
            rule: .retry(maxAttempts), retryDelay: retryDelay)
    }

    /// Records the holder's result, a failure judged by `rule` (``RetryPolicy``): it returns
    /// the task to the queue only when the rule says it is retryable and fewer than its
    /// attempts (and the task's own) were made; the retry delay doubles as above.
    public mutating func complete(
        by agent: String, token: UInt64, now: Date, failure: TaskFailure?, rule: RetryRule,
        retryDelay: TimeInterval = 0, digest: String? = nil
    ) throws(Refusal) {
        let mark = ResultMark(agent: agent, token: token, digest: digest)
        if lastResult == mark { throw .alreadyApplied }
        try checkHolder(agent, token: token, now: now)
        lastResult = mark
        leaseEndedAt = now
        leaseSeconds = leasedAtSeconds.map { now.timeIntervalSince1970 - $0 }
        if let failure {
            release(reason: failure.message, allowed: rule.retryable ? min(maxAttempts, rule.maxAttempts) : 0)
            lastErrorCode = failure.code
            if state == .queued, retryDelay > 0 {
                notBefore = now.addingTimeInterval(min(3600, retryDelay * pow(2, Double(max(0, attempts - 1)))))
            }
        } else {
            state = .succeeded
            holder = nil
            leaseExpiresAt = nil
            confirmBy = nil
            lastError = nil
            lastErrorCode = nil
        }
    }

    /// Returns an expired lease's task to the queue (or fails it when no attempt is left).
    /// Returns whether anything changed.
    @discardableResult
    public mutating func expire(now: Date) -> Bool {
        guard state == .leased, let expiry = leaseExpiresAt, now >= expiry else { return false }
        leaseEndedAt = now
        leaseSeconds = leasedAtSeconds.map { now.timeIntervalSince1970 - $0 }
        if confirmBy != nil {
            let returns = (unconfirmedReturns ?? 0) + 1
            unconfirmedReturns = returns
            if returns <= maxAttempts {
                // Never started: its agent did not answer, so the attempt is not counted.
                attempts -= 1
                release(
                    reason:
                        "the lease of \(holder ?? "?") was not confirmed in time (its agent is gone); not counted as an attempt"
                )
                lastErrorCode = nil
                return true
            }
        }
        release(reason: "the lease of \(holder ?? "?") expired")
        lastErrorCode = nil
        return true
    }

    /// Hands a leased task back without counting a failure (an agent shutting down cleanly).
    public mutating func handBack(by agent: String, token: UInt64, now: Date) throws(Refusal) {
        try checkHolder(agent, token: token, now: now)
        state = .queued
        holder = nil
        leaseExpiresAt = nil
        confirmBy = nil
        attempts -= 1
    }

    /// Fails a leased task whose lease began more than `limit` ago, for good (`timeout`): its
    /// holder's next renewal is refused, which stops the work. Returns whether it did.
    @discardableResult
    public mutating func timeOut(now: Date, limit: TimeInterval) -> Bool {
        guard state == .leased, let start = leasedAt, now.timeIntervalSince(start) > limit else { return false }
        leaseEndedAt = now
        leaseSeconds = leasedAtSeconds.map { now.timeIntervalSince1970 - $0 }
        lastError = "it ran longer than its max_duration of \(Int(limit)) s; the lease of \(holder ?? "?") was ended"
        lastErrorCode = .timeout
        holder = nil
        leaseExpiresAt = nil
        confirmBy = nil
        state = .failed
        return true
    }

    /// Cancels a task that is not finished; a late result for it is then refused. With
    /// `failure`, its code and message say why (`config-removed`).
    public mutating func cancel(failure: TaskFailure? = nil) throws(Refusal) {
        guard !state.isFinal else { throw .finished }
        if let failure {
            lastError = failure.message
            lastErrorCode = failure.code
        }
        state = .cancelled
        holder = nil
        leaseExpiresAt = nil
        confirmBy = nil
    }

    private func checkHolder(_ agent: String, token: UInt64, now: Date) throws(Refusal) {
        guard !state.isFinal else { throw .finished }
        guard state == .leased, token == fencingToken else { throw .staleToken }
        guard agent == holder else { throw .notHolder }
        guard let expiry = leaseExpiresAt, now < expiry else { throw .expired }
    }

    /// Ends the lease; the task goes back to the queue while fewer than `allowed` attempts
    /// (the task's own by default) were made.
    private mutating func release(reason: String, allowed: Int? = nil) {
        lastError = reason
        holder = nil
        leaseExpiresAt = nil
        confirmBy = nil
        state = attempts >= (allowed ?? maxAttempts) ? .failed : .queued
    }
}
