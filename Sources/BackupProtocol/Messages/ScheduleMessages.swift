import Foundation

/// `GET /v1/schedules` (operators): when each source of the site is backed up, when next, and
/// what the scheduler did at its last slot.
public struct ScheduleInfo: Codable, Sendable, Equatable {
    public var node: String
    public var source: String
    /// The cron expression, or `off`.
    public var schedule: String
    /// The IANA zone the expression is read in.
    public var timeZone: String
    /// Seconds after each slot at which this source fires (fixed per source).
    public var jitterSeconds: Int
    /// The next fire time; absent when off (or when it is backed up with `backedUpWith`).
    public var nextFire: Date?
    /// A Trac environment this svn source is backed up together with, on its slots.
    public var backedUpWith: String?
    /// The last slot the scheduler handled, and what it did then (`queued task N`,
    /// `skipped: still running`, `missed: …`, `first seen`, `failed: …`).
    public var lastSlot: Date?
    public var lastOutcome: String?
    public var lastTask: Int64?

    public init(
        node: String, source: String, schedule: String, timeZone: String, jitterSeconds: Int, nextFire: Date?,
        backedUpWith: String? = nil, lastSlot: Date? = nil, lastOutcome: String? = nil, lastTask: Int64? = nil
    ) {
        self.node = node
        self.source = source
        self.schedule = schedule
        self.timeZone = timeZone
        self.jitterSeconds = jitterSeconds
        self.nextFire = nextFire
        self.backedUpWith = backedUpWith
        self.lastSlot = lastSlot
        self.lastOutcome = lastOutcome
        self.lastTask = lastTask
    }
}
