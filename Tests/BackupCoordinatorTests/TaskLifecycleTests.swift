import BackupCoordinator
import Foundation
import Testing

/// Lease and fencing rules, with fixed times.
struct TaskLifecycleTests {
    /// The refusal `body` throws, or nil when it throws none (or something else).
    func refusal(_ body: () throws -> Void) -> TaskLifecycle.Refusal? {
        do {
            try body()
            return nil
        } catch {
            return error as? TaskLifecycle.Refusal
        }
    }

    let t0 = Date(timeIntervalSince1970: 1_795_770_000)

    @Test func aLeaseIsRenewedByItsHolderAndCompleted() throws {
        var task = TaskLifecycle()
        try task.lease(to: "srv1", token: 1, now: t0, duration: 30)
        #expect(task.state == .leased)
        try task.renew(by: "srv1", token: 1, now: t0 + 20, duration: 30, progressed: true, stallLimit: 60)
        #expect(task.leaseExpiresAt == t0 + 50)
        try task.complete(by: "srv1", token: 1, now: t0 + 40, error: nil)
        #expect(task.state == .succeeded)
    }

    @Test func anExpiredLeaseReturnsTheTaskAndTheLateResultIsRefused() throws {
        var task = TaskLifecycle()
        try task.lease(to: "srv1", token: 7, now: t0, duration: 30)
        let early = task.expire(now: t0 + 29)
        let due = task.expire(now: t0 + 30)
        #expect(!early)
        #expect(due)
        #expect(task.state == .queued)
        #expect(task.lastError == "the lease of srv1 expired")
        try task.lease(to: "srv2", token: 8, now: t0 + 31, duration: 30)
        // The dead lease's holder comes back with its old token.
        let r1 = refusal { try task.complete(by: "srv1", token: 7, now: t0 + 32, error: nil) }
        #expect(r1 == .staleToken)
        let r2 = refusal {
            try task.renew(by: "srv1", token: 7, now: t0 + 32, duration: 30, progressed: true, stallLimit: 60)
        }
        #expect(r2 == .staleToken)
        let r3 = refusal { try task.complete(by: "srv1", token: 8, now: t0 + 32, error: nil) }
        #expect(r3 == .notHolder)
        try task.complete(by: "srv2", token: 8, now: t0 + 33, error: nil)
        #expect(task.state == .succeeded)
        let r4 = refusal { try task.complete(by: "srv2", token: 8, now: t0 + 34, error: nil) }
        #expect(r4 == .finished)
    }

    @Test func tokensMustIncreaseAndALeasedTaskIsNotHandedOutTwice() throws {
        var task = TaskLifecycle()
        try task.lease(to: "a", token: 5, now: t0, duration: 30)
        let r5 = refusal { try task.lease(to: "b", token: 6, now: t0, duration: 30) }
        #expect(r5 == .notLeasable)
        let expired = task.expire(now: t0 + 31)
        #expect(expired)
        let r6 = refusal { try task.lease(to: "b", token: 5, now: t0 + 31, duration: 30) }
        #expect(r6 == .tokenNotIncreasing)
    }

    @Test func aRenewalPastItsExpiryIsRefusedEvenBeforeTheSweep() throws {
        var task = TaskLifecycle()
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        let r7 = refusal {
            try task.renew(by: "a", token: 1, now: t0 + 31, duration: 30, progressed: true, stallLimit: 60)
        }
        #expect(r7 == .expired)
    }

    @Test func aStalledHolderCannotKeepItsLease() throws {
        var task = TaskLifecycle()
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        try task.renew(by: "a", token: 1, now: t0 + 25, duration: 30, progressed: false, stallLimit: 60)
        try task.renew(by: "a", token: 1, now: t0 + 50, duration: 30, progressed: false, stallLimit: 60)
        let r8 = refusal {
            try task.renew(by: "a", token: 1, now: t0 + 75, duration: 30, progressed: false, stallLimit: 60)
        }
        #expect(r8 == .noProgress)
        try task.renew(by: "a", token: 1, now: t0 + 76, duration: 30, progressed: true, stallLimit: 60)
    }

    @Test func failuresRetryUntilTheAttemptsAreUsedUp() throws {
        var task = TaskLifecycle(maxAttempts: 2)
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        try task.complete(by: "a", token: 1, now: t0 + 1, error: "disk full")
        #expect(task.state == .queued)
        try task.lease(to: "a", token: 2, now: t0 + 2, duration: 30)
        try task.complete(by: "a", token: 2, now: t0 + 3, error: "disk full")
        #expect(task.state == .failed)
        #expect(task.lastError == "disk full")
    }

    @Test func aFailedTaskWaitsLongerBeforeEachRetry() throws {
        var task = TaskLifecycle(maxAttempts: 3)
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        try task.complete(by: "a", token: 1, now: t0 + 1, error: "receiver unreachable", retryDelay: 10)
        #expect(task.state == .queued)
        #expect(task.notBefore == t0 + 11)
        let early = refusal { try task.lease(to: "a", token: 2, now: t0 + 5, duration: 30) }
        #expect(early == .notLeasable)
        try task.lease(to: "a", token: 2, now: t0 + 11, duration: 30)
        #expect(task.notBefore == nil)
        try task.complete(by: "a", token: 2, now: t0 + 12, error: "receiver unreachable", retryDelay: 10)
        #expect(task.notBefore == t0 + 32, "the delay doubles")
        // An expired lease (a dead agent) goes back at once: another agent may take it.
        try task.lease(to: "b", token: 3, now: t0 + 40, duration: 30)
        let expired = task.expire(now: t0 + 71)
        #expect(expired)
        #expect(task.state == .failed, "three attempts are used up")
    }

    @Test func aCleanHandBackDoesNotCountAsAnAttemptAndCancelStopsEverything() throws {
        var task = TaskLifecycle(maxAttempts: 1)
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        try task.handBack(by: "a", token: 1, now: t0 + 1)
        #expect(task.state == .queued)
        #expect(task.attempts == 0)
        try task.lease(to: "b", token: 2, now: t0 + 2, duration: 30)
        try task.cancel()
        let r9 = refusal { try task.complete(by: "b", token: 2, now: t0 + 3, error: nil) }
        #expect(r9 == .finished)
        let r10 = refusal { try task.cancel() }
        #expect(r10 == .finished)
    }
}
