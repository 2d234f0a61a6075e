import BackupCore
import BackupHTTP
import BackupTesting
import Foundation
import Testing

@testable import BackupAgent

/// The stall watch on a manual clock: a transfer that keeps moving is never cut however long
/// it runs; one that stops is cut once the limit has passed without a byte, and only then.
@Suite(.timeLimit(.minutes(3)))
struct StallWatchTests {
    @Test func aMovingTransferRunsOnAndAStoppedOneIsCutAtTheLimit() async throws {
        // The waits below are for the watcher to be scheduled again, which a loaded 2-core
        // machine (the attack suite's CLI runs beside this) can delay; time itself is manual.
        let clock = ManualClock()
        let watch = StallWatch(limit: 5, clock: clock)
        #expect(watch.interval == .milliseconds(500))
        let bytes = LockedBox<Int64>(0)
        let cut = LockedBox(false)
        let (ticks, feed) = AsyncStream.makeStream(of: Int64.self)
        let transfer = Task {
            try await watch.run(progress: { bytes.withLock { $0 } }, onStall: { cut.withLock { $0 = true } }) {
                for await n in ticks { bytes.withLock { $0 += n } }  // Moves while fed; then waits forever.
                try await Task.sleep(for: .seconds(3600))
                return "finished"
            }
        }
        // 20 s of a moving transfer: four times the limit, never cut.
        for i in 1...40 {
            try await clock.waitForSleepers(seconds: 120)
            feed.yield(1000)
            while bytes.withLock({ $0 }) < Int64(i) * 1000 { await Task.yield() }
            clock.advance(by: .milliseconds(500))
        }
        #expect(!cut.withLock { $0 })
        // It stops: 4.5 s later it still runs, at 5 s it is cut.
        for _ in 0..<9 {
            try await clock.waitForSleepers(seconds: 120)
            clock.advance(by: .milliseconds(500))
        }
        try await clock.waitForSleepers(seconds: 120)
        #expect(!cut.withLock { $0 }, "not before the limit")
        clock.advance(by: .milliseconds(500))
        let outcome = await transfer.result
        #expect(cut.withLock { $0 })
        #expect(throws: StallWatch.Stalled.self) { try outcome.get() }
    }
}
