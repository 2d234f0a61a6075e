import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Cancelling blocking work ends the tools it runs, their children too, and the work throws
/// `cancelled` instead of finishing.
@Suite(.timeLimit(.minutes(3)))
struct WorkCancellationTests {
    @Test func cancellingEndsARunningToolAndItsChildrenWithinTheKillDelay() async throws {
        try await blocking {
            try withTemporaryDirectory { dir in
                let marker = dir.file("child-marker")
                let cancellation = WorkCancellation(killAfter: 2)
                let finished = DispatchSemaphore(value: 0)
                let outcome = LockedOutcome()
                Thread.detachNewThread {
                    do {
                        try cancellation.run {
                            // A child that ignores SIGTERM gets SIGKILL after the delay.
                            _ = try ToolRunner.run(
                                Tool("/bin/bash"), ["-c", "(trap '' TERM; exec -a '\(marker)' sleep 60) & wait"])
                        }
                        outcome.set("finished")
                    } catch let error as BackupError {
                        outcome.set(error.code.rawValue)
                    } catch {
                        outcome.set("\(error)")
                    }
                    finished.signal()
                }
                // Wait until the child runs, then cancel.
                let deadline = Date().addingTimeInterval(10)
                while try Command.run("pgrep", ["-f", marker]).status != 0 {
                    #expect(Date() < deadline, "the child never started")
                    if Date() >= deadline { return }
                    usleep(50_000)
                }
                let cancelledAt = Date()
                cancellation.cancel(reason: "the test said so")
                #expect(finished.wait(timeout: .now() + 10) == .success)
                #expect(outcome.value == "cancelled")
                while try Command.run("pgrep", ["-f", marker]).status == 0 {
                    #expect(Date().timeIntervalSince(cancelledAt) < 6, "the child outlived the kill delay")
                    if Date().timeIntervalSince(cancelledAt) >= 6 { return }
                    usleep(100_000)
                }
                // A tool started after the cancel does not run at all.
                #expect(throws: BackupError.self) {
                    try cancellation.run { _ = try ToolRunner.run(Tool("/bin/true"), []) }
                }
            }
        }
    }
}

final class LockedOutcome: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var text: String?
    func set(_ value: String) {
        lock.lock()
        text = value
        lock.unlock()
    }
    var value: String? {
        lock.lock()
        defer { lock.unlock() }
        return text
    }
}
