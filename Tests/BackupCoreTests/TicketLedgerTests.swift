import Foundation
import Testing

@testable import BackupCore

/// The ticket ledger refuses a spent or superseded ticket for as long as one could still be
/// accepted, and forgets a task once all its tickets have expired, so it stays small.
struct TicketLedgerTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aSpentOrStaleTicketIsRefusedUntilItWouldHaveExpired() {
        var ledger = TicketLedger()
        let expiry = start.addingTimeInterval(120)
        ledger.note(epoch: "e", task: 7, token: 3, spent: "t1", expiresAt: expiry, now: start)
        #expect(ledger.refusal(epoch: "e", task: 7, token: 3, id: "t1")?.code == .ticketUsed)
        #expect(ledger.refusal(epoch: "e", task: 7, token: 2, id: "t0")?.code == .ticketStale)
        #expect(ledger.refusal(epoch: "e", task: 7, token: 4, id: "t2") == nil)
        #expect(ledger.refusal(epoch: "other", task: 7, token: 2, id: "t1") == nil)
        // Another task's ticket just before the keep time ends keeps task 7's entry ...
        let almost = expiry.addingTimeInterval(TicketLedger.keepAfterExpiry - 1)
        ledger.note(epoch: "e", task: 8, token: 1, spent: nil, expiresAt: almost.addingTimeInterval(120), now: almost)
        #expect(ledger.refusal(epoch: "e", task: 7, token: 2, id: "t0")?.code == .ticketStale)
        // ... and one after it forgets task 7 whole: any of its tickets is refused as expired now.
        let after = expiry.addingTimeInterval(TicketLedger.keepAfterExpiry)
        ledger.note(epoch: "e", task: 9, token: 1, spent: nil, expiresAt: after.addingTimeInterval(120), now: after)
        #expect(ledger.tasks["e/7"] == nil)
        #expect(Set(ledger.tasks.keys) == ["e/8", "e/9"])
    }

    @Test func aTaskSeenWithoutSpendingIsStillForgottenAfterItsTicketsExpire() {
        var ledger = TicketLedger()
        // A thousand cycles, one task each, two minutes apart: the ledger holds only the last few.
        for cycle in 0..<1000 {
            let now = start.addingTimeInterval(Double(cycle) * 120)
            ledger.note(
                epoch: "e", task: Int64(cycle), token: 1, spent: cycle.isMultiple(of: 2) ? "t\(cycle)" : nil,
                expiresAt: now.addingTimeInterval(120), now: now)
        }
        #expect(ledger.tasks.count <= 7)
        #expect(ledger.tasks["e/999"]?.highestToken == 1)
    }

    @Test func aLaterLeaseKeepsTheTaskUntilItsOwnTicketExpires() {
        var ledger = TicketLedger()
        ledger.note(epoch: "e", task: 7, token: 1, spent: nil, expiresAt: start.addingTimeInterval(60), now: start)
        let later = start.addingTimeInterval(500)
        ledger.note(epoch: "e", task: 7, token: 2, spent: nil, expiresAt: later.addingTimeInterval(60), now: later)
        let check = start.addingTimeInterval(60 + TicketLedger.keepAfterExpiry + 1)
        ledger.note(epoch: "e", task: 8, token: 1, spent: nil, expiresAt: check.addingTimeInterval(60), now: check)
        #expect(ledger.refusal(epoch: "e", task: 7, token: 1, id: "x")?.code == .ticketStale)
    }

    @Test func anEntryFromAnOlderLedgerIsReadAndForgotten() throws {
        let old = #"{"format":"scm-backup-ledger/1","tasks":{"e/1":{"highestToken":4,"spent":{}}}}"#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var ledger = try decoder.decode(TicketLedger.self, from: Data(old.utf8))
        #expect(ledger.tasks["e/1"]?.highestToken == 4)
        ledger.note(epoch: "e", task: 2, token: 1, spent: nil, expiresAt: start, now: start)
        #expect(Set(ledger.tasks.keys) == ["e/2"])
    }
}
