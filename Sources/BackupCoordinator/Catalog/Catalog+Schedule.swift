import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// What the scheduler last did for one source: the slot it handled last (fired, skipped or
/// only noted as the start of the source's schedule), when, the task it queued, and why.
public struct ScheduleState: Sendable, Equatable {
    public var node: String
    public var source: String
    /// The last slot handled; later slots are ahead, or were missed while the hub was down.
    public var lastSlot: Date
    /// When a task was queued for it (nil when the slot was skipped or only noted).
    public var firedAt: Date?
    public var task: Int64?
    /// `queued task N`, `skipped: still running`, `missed: …`, `first seen`.
    public var outcome: String

    public init(
        node: String, source: String, lastSlot: Date, firedAt: Date? = nil, task: Int64? = nil, outcome: String
    ) {
        self.node = node
        self.source = source
        self.lastSlot = lastSlot
        self.firedAt = firedAt
        self.task = task
        self.outcome = outcome
    }
}

extension Catalog {
    /// Every source's schedule state, by `node/source`.
    public func scheduleStates() async throws -> [String: ScheduleState] {
        try await pool.read { db in
            var states: [String: ScheduleState] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM schedule_state") {
                let state = ScheduleState(
                    node: row["node"], source: row["source"], lastSlot: row["lastSlot"], firedAt: row["firedAt"],
                    task: row["task"], outcome: row["outcome"])
                states[state.node + "/" + state.source] = state
            }
            return states
        }
    }

    /// Records what the scheduler did for a source's slot.
    public func recordSchedule(_ state: ScheduleState) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO schedule_state (node, source, lastSlot, firedAt, task, outcome) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (node, source) DO UPDATE SET lastSlot = excluded.lastSlot, firedAt = excluded.firedAt,
                    task = excluded.task, outcome = excluded.outcome
                    """,
                arguments: [state.node, state.source, state.lastSlot, state.firedAt, state.task, state.outcome])
        }
    }

    /// Whether a backup of `source` on `node` is queued or running.
    public func backupActive(node: String, source: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM task WHERE state IN ('queued', 'leased') AND kind = 'backup'
                    AND node = ? AND source = ?)
                    """, arguments: [node, source]) ?? false
        }
    }
}

extension Catalog {
    /// Queued backups of `source` on `node` that a scheduled run of a slot at or before `slot`
    /// queued: what an agent's own backup of that slot makes redundant.
    public func queuedScheduledBackups(node: String, source: String, upTo slot: Date) async throws -> [Int64] {
        try await pool.read { db in
            try Int64.fetchAll(
                db,
                sql: """
                    SELECT task.id FROM task JOIN run ON run.id = task.run
                    WHERE task.kind = 'backup' AND task.state = 'queued' AND task.node = ? AND task.source = ?
                    AND run.trigger = 'schedule' AND run.slot <= ? ORDER BY task.id
                    """, arguments: [node, source, slot])
        }
    }
}
