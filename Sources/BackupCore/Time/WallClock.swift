import Foundation

/// Where wall-clock instants come from: what is persisted (lease expiries, ticket lifetimes,
/// retry times, retention) is a `Date` from here. Durations (stall watches, backoff, sweeps,
/// timeouts) use a monotonic `Clock<Duration>` instead, so that a clock step never stretches
/// or cuts them. Tests inject `ManualClock` (BackupTesting), which is both.
public protocol WallClock: Sendable {
    /// The current instant.
    var currentDate: Date { get }
}

/// The system's clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public var currentDate: Date { Date() }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    public var inSeconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
