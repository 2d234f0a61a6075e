import BackupCore
import Foundation

/// A clock a test moves by hand: a monotonic `Clock` whose sleepers wake only when the test
/// advances past their deadline, and a ``WallClock`` that moves with it from a fixed start.
public final class ManualClock: Clock, WallClock, @unchecked Sendable {
    // Safe: every mutable field is accessed with `lock` held.
    public struct Instant: InstantProtocol {
        public var offset: Duration
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private let lock = NSLock()
    private var current = Instant(offset: .zero)
    private var sleepers: [UUID: Sleeper] = [:]
    /// Sleeps cancelled before they registered (the cancel handler ran first).
    private var cancelledEarly: Set<UUID> = []
    private let start: Date

    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.start = start
    }

    public var now: Instant {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    public var minimumResolution: Duration { .nanoseconds(1) }

    public var currentDate: Date {
        start.addingTimeInterval(now.offset.inSeconds)
    }

    /// How many tasks sleep on this clock now (a test waits for a service to reach its sleep).
    public var sleeperCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sleepers.count
    }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lock.lock()
                // The cancel handler may have run before this registers: it left the id behind.
                if cancelledEarly.remove(id) != nil || Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                if deadline <= current {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                lock.unlock()
            }
        } onCancel: {
            lock.lock()
            let sleeper = sleepers.removeValue(forKey: id)
            if sleeper == nil { cancelledEarly.insert(id) }
            lock.unlock()
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time on by `duration`, waking every sleeper whose deadline it reaches.
    public func advance(by duration: Duration) {
        lock.lock()
        current = current.advanced(by: duration)
        let due = sleepers.filter { $0.value.deadline <= current }
        for id in due.keys { sleepers[id] = nil }
        lock.unlock()
        for sleeper in due.values { sleeper.continuation.resume() }
    }

    /// Moves time on to `date` (never back).
    public func advance(to date: Date) {
        let seconds = date.timeIntervalSince(currentDate)
        if seconds > 0 { advance(by: .milliseconds(Int64(seconds * 1000))) }
    }

    /// Waits (on real time, briefly) until at least `count` tasks sleep on this clock.
    public func waitForSleepers(_ count: Int = 1, seconds: Double = 120) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while sleeperCount < count {
            guard Date() < deadline else {
                throw BackupError(.io, "No \(count) sleeper(s) on the manual clock after \(seconds) s.")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
