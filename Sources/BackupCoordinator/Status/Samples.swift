import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Writes the time series the trends and plots read (``Catalog/addSamples(_:at:)``): every 5
/// minutes each registered node's disk free and total, and downsamples once an hour.
public struct SampleService: Service {
    let catalog: Catalog
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    let logger: Logger
    /// Seconds between two samples.
    static let every: TimeInterval = 300

    public init(catalog: Catalog, wallClock: any WallClock, clock: any Clock<Duration>, logger: Logger) {
        self.catalog = catalog
        self.wallClock = wallClock
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var looks = 0
            while !Task.isCancelled {
                do {
                    try await sample()
                    if looks % 12 == 0 { try await catalog.downsampleSamples(now: wallClock.currentDate) }
                } catch {
                    logger.error("the samples cannot be written", metadata: ["scm.error": "\(error)"])
                }
                looks += 1
                // Cancelled: shutting down.
                do { try await clock.sleep(for: .seconds(Self.every)) } catch { return }
            }
        }
    }

    /// One sample of every registered node's disk.
    public func sample() async throws {
        let now = wallClock.currentDate
        var values: [String: Double] = [:]
        for node in try await catalog.nodes(now: now, onlineWithin: .infinity) {
            guard let free = node.diskFree, let total = node.diskTotal, total > 0 else { continue }
            values["disk.free:\(node.name)"] = Double(free)
            values["disk.total:\(node.name)"] = Double(total)
        }
        if !values.isEmpty { try await catalog.addSamples(values, at: now) }
    }
}

/// When a disk fills at the pace of its recent samples: the least-squares line through them,
/// projected to zero free. Nil when it does not shrink, or with too little history (fewer than
/// three samples, or less than an hour of them).
public enum DiskTrend {
    public static func projectedFull(_ samples: [Catalog.Sample]) -> Date? {
        guard samples.count >= 3, let first = samples.first, let last = samples.last,
            last.at.timeIntervalSince(first.at) >= 3600
        else { return nil }
        let xs = samples.map { $0.at.timeIntervalSince(first.at) }
        let ys = samples.map(\.value)
        let n = Double(samples.count)
        let mx = xs.reduce(0, +) / n
        let my = ys.reduce(0, +) / n
        let sxx = zip(xs, xs).map { ($0 - mx) * ($1 - mx) }.reduce(0, +)
        let sxy = zip(xs, ys).map { ($0 - mx) * ($1 - my) }.reduce(0, +)
        guard sxx > 0 else { return nil }
        let slope = sxy / sxx  // bytes per second
        guard slope < 0 else { return nil }
        let intercept = my - slope * mx
        let zero = -intercept / slope
        return first.at.addingTimeInterval(zero)
    }
}
