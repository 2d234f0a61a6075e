import Foundation

/// Wakes agents that long-poll for a task the moment one is queued for their node.
///
/// A poller takes a ticket *before* it looks in the catalog, so a task queued between the look
/// and the wait still wakes it: the ticket remembers the signal.
actor TaskSignals {
    private enum Slot {
        case pending
        case signaled
        case waiting(CheckedContinuation<Void, Never>)
    }

    private var slots: [String: [UUID: Slot]] = [:]
    /// When leases handed out with a confirmation window must be confirmed (``LeaseSweeper``
    /// sweeps at the earliest, so an unconfirmed lease goes back at once).
    private var confirmations: [Date] = []
    /// The slot key the sweeper waits on; no node is named so (names are not empty).
    static let sweeper = ""
    /// The slot key the run driver waits on (a task result may move a run on); node names
    /// have no control characters.
    static let runs = "\u{1}runs"
    /// The slot key the self-backup waits on (a run finished).
    static let selfBackup = "\u{1}self-backup"

    /// Notes that a lease must be confirmed by `deadline`, and wakes the sweeper to plan for it.
    func expectConfirmation(by deadline: Date) {
        confirmations.append(deadline)
        signal(Self.sweeper)
    }

    /// The earliest confirmation deadline still ahead of the last sweep, if any.
    var nextConfirmation: Date? { confirmations.min() }

    /// Forgets the deadlines a sweep at `now` has dealt with; returns whether there were any.
    func sweptConfirmations(at now: Date) -> Bool {
        let before = confirmations.count
        confirmations.removeAll { $0 <= now }
        return confirmations.count < before
    }

    /// A ticket for `node`'s next signal.
    func ticket(for node: String) -> UUID {
        let id = UUID()
        slots[node, default: [:]][id] = .pending
        return id
    }

    /// Wakes every poller of `node`.
    func signal(_ node: String) {
        guard var tickets = slots[node] else { return }
        for (id, slot) in tickets {
            switch slot {
            case .waiting(let continuation):
                continuation.resume()
                tickets[id] = nil
            case .pending:
                tickets[id] = .signaled
            case .signaled:
                break
            }
        }
        slots[node] = tickets
    }

    /// Waits for the ticket's signal (at once if it came already) or its `finish`.
    func wait(_ id: UUID, node: String) async {
        guard let slot = slots[node]?[id] else { return }
        if case .signaled = slot {
            slots[node]?[id] = nil
            return
        }
        await withCheckedContinuation { continuation in
            slots[node]?[id] = .waiting(continuation)
        }
    }

    /// Ends a ticket, waking its waiter if any. Safe to call more than once.
    func finish(_ id: UUID, node: String) {
        if case .waiting(let continuation) = slots[node]?[id] { continuation.resume() }
        slots[node]?[id] = nil
        if slots[node]?.isEmpty == true { slots[node] = nil }
    }

    /// Waits for the ticket's signal for at most `seconds`, then ends the ticket.
    nonisolated func wait(
        _ id: UUID, node: String, atMost seconds: Double, clock: any Clock<Duration> = ContinuousClock()
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(id, node: node) }
            group.addTask {
                // Cancelled when the signal comes first; either way the ticket is ended below.
                try? await clock.sleep(for: .milliseconds(Int64(seconds * 1000)))
                await self.finish(id, node: node)
            }
            await group.next()
            group.cancelAll()
        }
        await finish(id, node: node)
    }
}
