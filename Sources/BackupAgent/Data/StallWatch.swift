import BackupCore
import BackupHTTP
import Foundation

/// The one watch for transfers that stop moving, on both ends: it runs the transfer's body and
/// looks at its progress every `interval` of the monotonic `clock`; when the count has not moved
/// for `limit`, it runs `onStall` (the data port closes the connection, freeing its slot) and
/// throws ``Stalled``, cancelling the body. Durations add up on the clock the watch sleeps on,
/// so a test drives it with a manual clock.
struct StallWatch: Sendable {
    let limit: Duration
    let clock: any Clock<Duration>

    init(limit seconds: Double, clock: any Clock<Duration> = ContinuousClock()) {
        limit = .milliseconds(Int64(seconds * 1000))
        self.clock = clock
    }

    /// How often to look: a tenth of the limit, between 100 ms and 1 s.
    var interval: Duration { min(.seconds(1), max(.milliseconds(100), limit / 10)) }

    struct Stalled: Error, CustomStringConvertible {
        var seconds: Double
        var description: String { "No byte moved for \(Int(seconds)) s: the transfer was cut." }
    }

    /// Runs `body` in a task of its own while `progress()` (a count that grows while bytes
    /// move) is watched; a stall cancels it (the client side of a transfer).
    func run<T: Sendable>(
        progress: @escaping @Sendable () -> Int64, onStall: @escaping @Sendable () -> Void = {},
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await waitForStall(progress)
                onStall()
                throw Stalled(seconds: seconds)
            }
            defer { group.cancelAll() }
            while let value = try await group.next() {
                if let value { return value }
            }
            throw CancellationError()
        }
    }

    /// Runs `body` in this task while `progress()` is watched; at a stall `onStall` must make
    /// the body fail (the data port closes the connection it reads or writes), and ``Stalled``
    /// is thrown instead of that failure.
    func watching<T>(
        progress: @escaping @Sendable () -> Int64, onStall: @escaping @Sendable () -> Void,
        _ body: () async throws -> T
    ) async throws -> T {
        let stalled = LockedBox(false)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await waitForStall(progress)
                stalled.withLock { $0 = true }
                onStall()
            }
            defer { group.cancelAll() }
            do {
                return try await body()
            } catch {
                if stalled.withLock({ $0 }) { throw Stalled(seconds: seconds) }
                throw error
            }
        }
    }

    var seconds: Double {
        limit.inSeconds
    }

    /// Returns once the count has not moved for `limit` (throws when cancelled).
    private func waitForStall(_ progress: @Sendable () -> Int64) async throws {
        var seen = progress()
        var quiet = Duration.zero
        while true {
            try await clock.sleep(for: interval)
            let now = progress()
            if now != seen {
                seen = now
                quiet = .zero
            } else {
                quiet += interval
                if quiet >= limit { return }
            }
        }
    }
}
