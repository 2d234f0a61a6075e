import BackupCoordinator
import BackupProtocol
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

    @Test func aConfirmedLeaseRunsItsFullLength() throws {
        var task = TaskLifecycle()
        try task.lease(to: "srv1", token: 1, now: t0, duration: 60, confirmWithin: 5)
        #expect(task.leaseExpiresAt == t0 + 5 && task.confirmBy == t0 + 5)
        try task.renew(by: "srv1", token: 1, now: t0 + 1, duration: 60, progressed: true, stallLimit: 600)
        #expect(task.leaseExpiresAt == t0 + 61 && task.confirmBy == nil)
        let early = task.expire(now: t0 + 30)
        let due = task.expire(now: t0 + 61)
        #expect(!early && due)
        #expect(task.state == .queued && task.attempts == 1, "a confirmed lease that expires counts")
    }

    @Test func anUnconfirmedLeaseGoesBackWithoutCountingAnAttemptButNotForever() throws {
        var task = TaskLifecycle(maxAttempts: 3)
        var now = t0
        for token in 1...3 {
            try task.lease(to: "srv1", token: UInt64(token), now: now, duration: 60, confirmWithin: 5)
            let early = task.expire(now: now + 4)
            let due = task.expire(now: now + 5)
            #expect(!early && due)
            #expect(task.state == .queued && task.attempts == 0)
            #expect(task.lastError?.contains("was not confirmed in time") == true)
            now += 10
        }
        // A fourth return in a row counts: an agent that never confirms uses the attempts up.
        for token in 4...6 {
            try task.lease(to: "srv1", token: UInt64(token), now: now, duration: 60, confirmWithin: 5)
            let due = task.expire(now: now + 5)
            #expect(due)
            now += 10
        }
        #expect(task.state == .failed && task.attempts == 3)
        // A window longer than the lease is cut to the lease.
        var short = TaskLifecycle()
        try short.lease(to: "srv1", token: 1, now: t0, duration: 2, confirmWithin: 5)
        #expect(short.leaseExpiresAt == t0 + 2)
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
        // The same result again (the holder re-sending its journal) is a duplicate, not applied twice;
        // anyone else's is refused.
        let r4 = refusal { try task.complete(by: "srv2", token: 8, now: t0 + 34, error: nil) }
        #expect(r4 == .alreadyApplied)
        let r4b = refusal { try task.complete(by: "srv1", token: 8, now: t0 + 34, error: nil) }
        #expect(r4b == .finished)
    }

    @Test func aFailureSentTwiceCountsOnce() throws {
        var task = TaskLifecycle()
        try task.lease(to: "a", token: 1, now: t0, duration: 30)
        try task.complete(by: "a", token: 1, now: t0 + 1, error: "disk full")
        #expect(task.state == .queued)
        let again = refusal { try task.complete(by: "a", token: 1, now: t0 + 2, error: "disk full") }
        #expect(again == .alreadyApplied)
        // Another body under the same lease is no duplicate: refused as any late message.
        let other = refusal {
            try task.complete(
                by: "a", token: 1, now: t0 + 2, failure: nil, rule: .permanent, digest: "another body")
        }
        #expect(other == .staleToken)
        #expect(task.state == .queued && task.attempts == 1)
        // A life cycle stored before results were marked decodes without the mark.
        var stored = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(task)) as! [String: Any]
        stored.removeValue(forKey: "lastResult")
        let old = try JSONDecoder().decode(
            TaskLifecycle.self, from: try JSONSerialization.data(withJSONObject: stored))
        #expect(old.lastResult == nil && old.state == .queued)
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

    @Test func aFailureIsRetriedByItsCodeAloneAndAnUnknownCodeIsPermanent() throws {
        // A refused source fails at once, with attempts left.
        var refused = TaskLifecycle(maxAttempts: 3)
        try refused.lease(to: "a", token: 1, now: t0, duration: 30)
        let notAllowed = TaskFailure(code: .refused, message: "Source 'etc' is outside source_roots.")
        try refused.complete(
            by: "a", token: 1, now: t0 + 1, failure: notAllowed, rule: RetryPolicy.rule(for: notAllowed.code),
            retryDelay: 10)
        #expect(refused.state == .failed)
        #expect(refused.lastErrorCode == .refused)
        #expect(refused.lastError == notAllowed.message)

        // A code nobody decided on is permanent too.
        var odd = TaskLifecycle(maxAttempts: 3)
        try odd.lease(to: "a", token: 1, now: t0, duration: 30)
        let unknown = TaskFailure(code: "frobnicator-jammed", message: "?")
        try odd.complete(by: "a", token: 1, now: t0 + 1, failure: unknown, rule: RetryPolicy.rule(for: unknown.code))
        #expect(odd.state == .failed)

        // An unreachable peer is retried up to the table's attempts, never past the task's own.
        var transfer = TaskLifecycle(maxAttempts: 3)
        let away = TaskFailure(code: .peerUnreachable, message: "Cannot reach the data port of 'vault'.")
        for attempt in 1...3 {
            let at = t0 + Double(attempt) * 1000
            try transfer.lease(to: "a", token: UInt64(attempt), now: at, duration: 30)
            try transfer.complete(
                by: "a", token: UInt64(attempt), now: at + 1, failure: away, rule: RetryPolicy.rule(for: away.code),
                retryDelay: 10)
            #expect(transfer.state == (attempt < 3 ? .queued : .failed), "attempt \(attempt)")
        }
        #expect(RetryPolicy.rule(for: .peerUnreachable).maxAttempts == 5)

        // A success clears the code; an expiry leaves none.
        var disk = TaskLifecycle(maxAttempts: 3)
        try disk.lease(to: "a", token: 1, now: t0, duration: 30)
        try disk.complete(
            by: "a", token: 1, now: t0 + 1, failure: TaskFailure(code: .diskFull, message: "full"),
            rule: RetryPolicy.rule(for: .diskFull))
        #expect(disk.state == .queued)
        #expect(disk.lastErrorCode == .diskFull)
        try disk.lease(to: "a", token: 2, now: t0 + 100, duration: 30)
        let expired = disk.expire(now: t0 + 131)
        #expect(expired)
        #expect(disk.lastErrorCode == nil)
    }

    @Test func anAgentTooOldForAKindIsNamedWithBothVersions() {
        #expect(AgentRequirements.refusal(kind: .backup, agentVersion: "bench") == nil)
        #expect(AgentRequirements.refusal(kind: .purge, agentVersion: "0.2.0") == nil)
        #expect(AgentRequirements.refusal(kind: .transfer, agentVersion: "1.0.0") == nil)
        let old = AgentRequirements.refusal(kind: .purge, agentVersion: "0.1.0")
        #expect(old?.contains("0.2.0") == true && old?.contains("'0.1.0'") == true, "\(old ?? "")")
        #expect(AgentRequirements.refusal(kind: .transfer, agentVersion: "0.10") != nil)
        #expect(AgentRequirements.refusal(kind: .transfer, agentVersion: nil) != nil)
    }
}
