import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Runs in the catalog: a `run` row per run and a `run_source` row per source of it, holding
/// what the ``RunDriver`` last concluded (the artifacts made, each copy's state and task). The
/// tasks of a run carry its id (`task.run`), so a copy's transfer queued just before the hub
/// died is found again, not queued twice.
extension Catalog {
    static func registerRunMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9-runs") { db in
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("trigger", .text).notNull()
                t.column("slot", .datetime)
                t.column("requestedBy", .text)
                t.column("state", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("summary", .text)
            }
            try db.create(index: "run_by_state", on: "run", columns: ["state", "id"])
            try db.create(table: "run_source") { t in
                t.column("runId", .integer).notNull().references("run", onDelete: .cascade)
                t.column("node", .text).notNull()
                t.column("source", .text).notNull()
                t.column("state", .text).notNull()
                t.column("backupTask", .integer)
                t.column("artifacts", .text).notNull().defaults(to: "[]")
                t.column("copiesWanted", .integer).notNull()
                t.column("copies", .text).notNull().defaults(to: "[]")
                t.column("reason", .text)
                t.column("finishedAt", .datetime)
                t.column("waitingSince", .datetime)
                t.primaryKey(["runId", "node", "source"])
            }
            try db.create(index: "run_source_by_source", on: "run_source", columns: ["node", "source", "runId"])
            try db.alter(table: "task") { t in t.add(column: "run", .integer) }
            try db.create(index: "task_by_run", on: "task", columns: ["run"])
            try db.create(index: "artifact_by_origin", on: "artifact", columns: ["origin", "source", "firstSeenAt"])
            // The newest artifact of each source (status), and the copies a node holds by state.
            try db.create(index: "artifact_by_stamp", on: "artifact", columns: ["origin", "source", "stamp"])
            try db.create(index: "copy_by_artifact", on: "copy", columns: ["artifactId", "node"])
            // What each agent said it allows at register (information for status and config check).
            try db.alter(table: "node") { t in
                t.add(column: "sourceRoots", .text)
                t.add(column: "preBackupSteps", .text)
            }
        }
    }

    /// A source a new run selects: its backup is queued with the run, or it is recorded
    /// skipped with `skipReason`.
    public struct RunStart: Sendable {
        public var node: String
        public var source: String
        public var definition: SourceDefinition
        public var copiesWanted: Int
        public var skipReason: String?

        public init(node: String, source: String, definition: SourceDefinition, copiesWanted: Int, skipReason: String?)
        {
            self.node = node
            self.source = source
            self.definition = definition
            self.copiesWanted = copiesWanted
            self.skipReason = skipReason
        }
    }

    /// Records a run and queues the backups of its sources, in one transaction: a run is never
    /// without its backups, nor a backup of it without its run.
    public func startRun(
        trigger: RunTrigger, slot: Date?, requestedBy: String?, sources: [RunStart], now: Date, maxAttempts: Int = 3
    ) async throws -> (run: RunInfo, backups: [TaskInfo]) {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO run (trigger, slot, requestedBy, state, startedAt) VALUES (?, ?, ?, 'running', ?)",
                arguments: [trigger.rawValue, slot, requestedBy, now])
            let id = db.lastInsertedRowID
            var backups: [TaskInfo] = []
            for start in sources {
                var entry = RunSourceInfo(
                    node: start.node, source: start.source, state: .backingUp, copiesWanted: start.copiesWanted)
                if let reason = start.skipReason {
                    entry.state = .skipped
                    entry.reason = reason
                    entry.finishedAt = now
                } else {
                    let task = try Self.insertTask(
                        db, SubmitTaskRequest(kind: .backup, node: start.node, source: start.source),
                        definition: start.definition, transfer: nil, now: now, maxAttempts: maxAttempts, run: id)
                    entry.backupTask = task.id
                    backups.append(task)
                }
                try Self.saveRunSource(db, run: id, entry, waitingSince: nil)
            }
            guard let run = try Self.run(db, id: id) else {
                throw BackupError(.io, "Run \(id) vanished from the catalog right after it was recorded.")
            }
            return (run, backups)
        }
    }

    /// Run `id`, or nil.
    public func run(_ id: Int64) async throws -> RunInfo? {
        try await pool.read { db in try Self.run(db, id: id) }
    }

    /// Runs newest first, a page at a time.
    public func runs(_ query: RunListQuery = RunListQuery()) async throws -> [RunInfo] {
        try await pool.read { db in
            let ids: [Int64]
            if let before = query.before {
                ids = try Int64.fetchAll(
                    db, sql: "SELECT id FROM run WHERE id < ? ORDER BY id DESC LIMIT ?",
                    arguments: [before, query.limit])
            } else {
                ids = try Int64.fetchAll(
                    db, sql: "SELECT id FROM run ORDER BY id DESC LIMIT ?", arguments: [query.limit])
            }
            return try ids.compactMap { try Self.run(db, id: $0) }
        }
    }

    /// The runs still running, oldest first (selected through the state index).
    public func runningRuns() async throws -> [RunInfo] {
        try await pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM run WHERE state = 'running' ORDER BY id").compactMap {
                try Self.run(db, id: $0)
            }
        }
    }

    /// When the driver first saw each unfinished source of run `id` wait for its artifact.
    func runWaits(_ id: Int64) async throws -> [String: Date] {
        try await pool.read { db in
            var waits: [String: Date] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT node, source, waitingSince FROM run_source WHERE runId = ? AND waitingSince IS NOT NULL",
                arguments: [id])
            {
                waits[(row["node"] as String) + "/" + (row["source"] as String)] = row["waitingSince"]
            }
            return waits
        }
    }

    /// Stores what the driver concluded of one source of run `id`.
    func saveRunSource(_ id: Int64, _ entry: RunSourceInfo, waitingSince: Date?) async throws {
        try await pool.write { db in try Self.saveRunSource(db, run: id, entry, waitingSince: waitingSince) }
    }

    /// Ends run `id` in `state`.
    func finishRun(_ id: Int64, state: RunState, now: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE run SET state = ?, finishedAt = ? WHERE id = ? AND state = 'running'",
                arguments: [state.rawValue, now, id])
        }
    }

    /// The tasks of run `id`, oldest first.
    public func tasks(ofRun id: Int64) async throws -> [TaskInfo] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM task WHERE run = ? ORDER BY id", arguments: [id]).map(Self.info)
        }
    }

    /// Whether a run newer than `run` made an artifact of `source` on `node`.
    func newerRunMade(node: String, source: String, after run: Int64) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(
                db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM run_source WHERE node = ? AND source = ? AND runId > ?
                    AND artifacts != '[]')
                    """, arguments: [node, source, run]) ?? false
        }
    }

    /// Runs that finished before `cutoff` keep only their summary ("3 sources: 2 succeeded,
    /// 1 failed"): their per-source rows go, at most `limit` runs a call. Returns how many.
    public func pruneRuns(finishedBefore cutoff: Date, limit: Int = 500) async throws -> Int {
        try await pool.write { db in
            let ids = try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM run WHERE state != 'running' AND finishedAt < ? AND summary IS NULL ORDER BY id LIMIT ?
                    """, arguments: [cutoff, limit])
            for id in ids {
                guard let run = try Self.run(db, id: id) else { continue }
                try db.execute(
                    sql: "UPDATE run SET summary = ? WHERE id = ?", arguments: [Self.summary(of: run.sources), id])
                try db.execute(sql: "DELETE FROM run_source WHERE runId = ?", arguments: [id])
            }
            return ids.count
        }
    }

    /// "3 sources: 2 succeeded, 1 failed".
    static func summary(of sources: [RunSourceInfo]) -> String {
        let counts = Dictionary(grouping: sources, by: \.state).mapValues(\.count)
        let parts = RunSourceState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }
        return "\(sources.count) sources" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }

    /// Transfer tasks to `receiver` queued or leased, however many.
    func activeTransferCount(to receiver: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM task WHERE state IN ('queued', 'leased') AND kind = 'transfer'
                    AND json_extract(transfer, '$.receiver') = ?
                    """, arguments: [receiver]) ?? 0
        }
    }

    private static func saveRunSource(_ db: Database, run: Int64, _ entry: RunSourceInfo, waitingSince: Date?) throws {
        try db.execute(
            sql: """
                INSERT INTO run_source (runId, node, source, state, backupTask, artifacts, copiesWanted, copies, reason,
                finishedAt, waitingSince) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (runId, node, source) DO UPDATE SET state = excluded.state,
                backupTask = excluded.backupTask, artifacts = excluded.artifacts, copies = excluded.copies,
                reason = excluded.reason, finishedAt = excluded.finishedAt, waitingSince = excluded.waitingSince
                """,
            arguments: [
                run, entry.node, entry.source, entry.state.rawValue, entry.backupTask,
                try json(entry.artifacts) ?? "[]", entry.copiesWanted, try json(entry.copies) ?? "[]", entry.reason,
                entry.finishedAt, waitingSince,
            ])
    }

    private static func run(_ db: Database, id: Int64) throws -> RunInfo? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]) else { return nil }
        let sources = try Row.fetchAll(
            db, sql: "SELECT * FROM run_source WHERE runId = ? ORDER BY node, source", arguments: [id]
        ).map { r in
            let stateName: String = r["state"]
            guard let state = RunSourceState(rawValue: stateName) else {
                throw BackupError(.io, "Run \(id) of the catalog has a source in an unknown state '\(stateName)'.")
            }
            return RunSourceInfo(
                node: r["node"], source: r["source"], state: state, backupTask: r["backupTask"],
                artifacts: try decodeRunColumn(r["artifacts"], "artifacts", run: id),
                copiesWanted: r["copiesWanted"], copies: try decodeRunColumn(r["copies"], "copies", run: id),
                reason: r["reason"], finishedAt: r["finishedAt"])
        }
        let triggerName: String = row["trigger"]
        let stateName: String = row["state"]
        guard let trigger = RunTrigger(rawValue: triggerName), let state = RunState(rawValue: stateName) else {
            throw BackupError(
                .io, "Run \(id) of the catalog has an unknown trigger '\(triggerName)' or state '\(stateName)'.")
        }
        return RunInfo(
            id: id, trigger: trigger, slot: row["slot"], requestedBy: row["requestedBy"], state: state,
            startedAt: row["startedAt"], finishedAt: row["finishedAt"], sources: sources, summary: row["summary"])
    }

    private static func decodeRunColumn<T: Decodable>(_ text: String, _ column: String, run id: Int64) throws -> T {
        do { return try WireJSON.decoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw BackupError(.io, "Run \(id) of the catalog has an unreadable \(column): \(error)", cause: error)
        }
    }
}
