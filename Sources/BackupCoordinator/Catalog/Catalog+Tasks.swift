import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Tasks and their leases. Every change happens in one write transaction, so two agents can
/// never hold the same task and fencing tokens only grow, across restarts too.
extension Catalog {
    static func registerTaskMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v1-tasks") { db in
            try db.create(table: "task") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull()
                t.column("node", .text).notNull()
                t.column("source", .text)
                t.column("state", .text).notNull()
                t.column("lifecycle", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(index: "task_by_node_state", on: "task", columns: ["node", "state", "id"])
            try db.create(table: "counter") { t in
                t.primaryKey("name", .text)
                t.column("value", .integer).notNull()
            }
            try db.execute(sql: "INSERT INTO counter (name, value) VALUES ('fencing', 0)")
        }
        // What a task carries (JSON) and how far it got.
        migrator.registerMigration("v2-task-details") { db in
            try db.alter(table: "task") { t in
                t.add(column: "definition", .text)
                t.add(column: "artifacts", .text)
                t.add(column: "progress", .text)
                t.add(column: "detail", .text)
            }
        }
    }

    /// Queues a task (with the definition of a backup's source, or a transfer's order);
    /// returns it.
    public func submit(
        _ request: SubmitTaskRequest, definition: SourceDefinition? = nil, transfer: TransferOrder? = nil, now: Date,
        maxAttempts: Int = 3
    ) async throws -> TaskInfo {
        try await submit(
            request, definition: definition, transfer: transfer, now: now, maxAttempts: maxAttempts, run: nil)
    }

    /// ``submit(_:definition:transfer:now:maxAttempts:)`` for a task of run `run`.
    public func submit(
        _ request: SubmitTaskRequest, definition: SourceDefinition? = nil, transfer: TransferOrder? = nil, now: Date,
        maxAttempts: Int = 3, run: Int64?
    ) async throws -> TaskInfo {
        try await pool.write { db in
            try Self.insertTask(
                db, request, definition: definition, transfer: transfer, now: now, maxAttempts: maxAttempts, run: run)
        }
    }

    static func insertTask(
        _ db: Database, _ request: SubmitTaskRequest, definition: SourceDefinition?, transfer: TransferOrder?,
        now: Date, maxAttempts: Int, run: Int64?
    ) throws -> TaskInfo {
        let lifecycle = TaskLifecycle(maxAttempts: maxAttempts)
        try db.execute(
            sql: """
                INSERT INTO task (kind, node, source, state, lifecycle, createdAt, definition, artifacts, transfer, run)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                request.kind.rawValue, request.node, request.source, lifecycle.state.rawValue,
                try Self.encode(lifecycle), now, try Self.json(definition), try Self.json(request.artifacts),
                try Self.json(transfer), run,
            ])
        let id = db.lastInsertedRowID
        guard let task = try Self.task(db, id: id) else {
            throw BackupError(.io, "Task \(id) vanished from the catalog right after it was queued.")
        }
        return task
    }

    /// Expires overdue leases, then leases `node`'s oldest queued task, if any, with the next
    /// fencing token, while `node` holds fewer than `maxTasks` leases. A backup of a source whose
    /// other backup is leased waits (the lease on a source: never two backups of one source at
    /// once); a purge waits until the node holds no lease, and nothing goes beside a purge.
    public func leaseNext(
        for node: String, now: Date, duration: TimeInterval, confirmWithin: TimeInterval? = nil, maxTasks: Int = 1
    ) async throws -> TaskInfo? {
        try await pool.write { db in
            _ = try Self.expireLeases(db, now: now)
            let held = try Row.fetchAll(
                db, sql: "SELECT kind FROM task WHERE node = ? AND state = 'leased'", arguments: [node]
            ).map { $0["kind"] as String }
            // Within the node's max_tasks, and nothing beside a purge.
            guard held.count < max(1, maxTasks), !held.contains(TaskKind.purge.rawValue) else { return nil }
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT * FROM task WHERE node = ? AND state = 'queued' AND (notBefore IS NULL OR notBefore <= ?)
                        AND NOT (kind = 'backup' AND EXISTS (SELECT 1 FROM task AS other WHERE other.state = 'leased'
                        AND other.kind = 'backup' AND other.node = task.node AND other.source = task.source))
                        AND (kind != 'purge' OR ?)
                        ORDER BY id LIMIT 1
                        """,
                    arguments: [node, now, held.isEmpty])
            else { return nil }
            guard
                let next = try Int64.fetchOne(
                    db, sql: "UPDATE counter SET value = value + 1 WHERE name = 'fencing' RETURNING value")
            else {
                throw BackupError(
                    .io,
                    "The catalog has no 'fencing' row in its counter table, so no lease can be handed out; it is damaged (restore it from a backup of the hub)."
                )
            }
            let token = UInt64(next)
            var lifecycle = try Self.decode(row["lifecycle"])
            try lifecycle.lease(to: node, token: token, now: now, duration: duration, confirmWithin: confirmWithin)
            let id: Int64 = row["id"]
            try Self.store(db, id: id, lifecycle)
            return try Self.task(db, id: id)
        }
    }

    /// Applies `change` to task `id` in one transaction, recording `progress` and `detail`
    /// when given; a refusal leaves it unchanged.
    public func updateTask(
        _ id: Int64, progress: TaskProgress? = nil, detail: String? = nil,
        _ change: @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
    ) async throws -> TaskInfo? {
        try await pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT lifecycle FROM task WHERE id = ?", arguments: [id]) else {
                return nil
            }
            var lifecycle = try Self.decode(row["lifecycle"])
            try change(&lifecycle)
            try Self.store(db, id: id, lifecycle)
            if let progress {
                try db.execute(
                    sql: "UPDATE task SET progress = ? WHERE id = ?", arguments: [try Self.json(progress), id])
            }
            if let detail {
                try db.execute(sql: "UPDATE task SET detail = ? WHERE id = ?", arguments: [detail, id])
            }
            return try Self.task(db, id: id)
        }
    }

    /// Returns expired leases' tasks to the queue; the number returned.
    @discardableResult
    public func expireLeases(now: Date) async throws -> Int {
        try await expireLeasedTasks(now: now).count
    }

    /// Returns expired leases' tasks to the queue (or fails them when no attempt is left);
    /// returns them as they are now.
    public func expireLeasedTasks(now: Date) async throws -> [TaskInfo] {
        try await pool.write { db in
            try Self.expireLeases(db, now: now).compactMap { try Self.task(db, id: $0) }
        }
    }

    /// Deletes finished tasks created more than `history.taskDays` ago and events older than
    /// `history.eventDays`; returns how many of each. Queued and leased tasks are never deleted.
    /// Indexed, so that a sweep costs little however long the site has run.
    public func pruneHistory(_ history: HistoryRetention, now: Date) async throws -> (tasks: Int, events: Int) {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM task WHERE createdAt < ? AND state IN ('succeeded', 'failed', 'cancelled')",
                arguments: [now.addingTimeInterval(-Double(history.taskDays) * 86_400)])
            let tasks = db.changesCount
            try db.execute(
                sql: "DELETE FROM event WHERE at < ?",
                arguments: [now.addingTimeInterval(-Double(history.eventDays) * 86_400)])
            return (tasks, db.changesCount)
        }
    }

    /// Tasks newest first, at most `query.limit`: only those in `query.states` and with an id
    /// below `query.before` when given.
    public func tasks(_ query: TaskListQuery = TaskListQuery()) async throws -> [TaskInfo] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let states = query.states {
                conditions.append("state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
                arguments += states.map(\.rawValue)
            }
            if let before = query.before {
                conditions.append("id < ?")
                arguments.append(before)
            }
            if let node = query.node {
                conditions.append("node = ?")
                arguments.append(node)
            }
            let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            arguments.append(query.limit)
            return try Row.fetchAll(
                db, sql: "SELECT * FROM task\(filter) ORDER BY id DESC LIMIT ?",
                arguments: StatementArguments(arguments)
            ).map(Self.info)
        }
    }

    /// The transfer tasks, only those in `states` or to `receiver` when given, selected in SQL
    /// rather than decoded from the whole task history.
    func transferTasks(in states: [TaskState]? = nil, to receiver: String? = nil) async throws -> [TaskInfo] {
        try await pool.read { db in
            if let receiver {
                return try Row.fetchAll(
                    db,
                    sql:
                        "SELECT * FROM task WHERE kind = 'transfer' AND json_extract(transfer, '$.receiver') = ? ORDER BY id",
                    arguments: [receiver]
                ).map(Self.info)
            }
            if let states {
                let marks = states.map { _ in "?" }.joined(separator: ", ")
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM task WHERE kind = 'transfer' AND state IN (\(marks)) ORDER BY id",
                    arguments: StatementArguments(states.map(\.rawValue))
                ).map(Self.info)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM task WHERE kind = 'transfer' ORDER BY id").map(Self.info)
        }
    }

    /// Fails for good (`timeout`) every leased task whose lease began longer ago than its
    /// kind's `max_duration`; returns them.
    public func timeOutLeasedTasks(now: Date, limits: SiteConfiguration.RunLimits) async throws -> [TaskInfo] {
        try await pool.write { db in
            var ended: [TaskInfo] = []
            for row in try Row.fetchAll(db, sql: "SELECT id, kind, lifecycle FROM task WHERE state = 'leased'") {
                guard let kind = TaskKind(rawValue: row["kind"]), let limit = limits.maxDuration(of: kind) else {
                    continue
                }
                var lifecycle = try Self.decode(row["lifecycle"])
                if lifecycle.timeOut(now: now, limit: limit) {
                    let id: Int64 = row["id"]
                    try Self.store(db, id: id, lifecycle)
                    if let task = try Self.task(db, id: id) { ended.append(task) }
                }
            }
            return ended
        }
    }

    // MARK: - Rows

    /// The ids of the leases it expired.
    private static func expireLeases(_ db: Database, now: Date) throws -> [Int64] {
        var expired: [Int64] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, lifecycle FROM task WHERE state = 'leased'") {
            var lifecycle = try decode(row["lifecycle"])
            if lifecycle.expire(now: now) {
                let id: Int64 = row["id"]
                try store(db, id: id, lifecycle)
                expired.append(id)
            }
        }
        return expired
    }

    private static func store(_ db: Database, id: Int64, _ lifecycle: TaskLifecycle) throws {
        try db.execute(
            sql: "UPDATE task SET state = ?, lifecycle = ?, notBefore = ? WHERE id = ?",
            arguments: [lifecycle.state.rawValue, try encode(lifecycle), lifecycle.notBefore, id])
    }

    /// Task `id`, or nil when there is none.
    public func task(_ id: Int64) async throws -> TaskInfo? {
        try await pool.read { db in try Self.task(db, id: id) }
    }

    static func task(_ db: Database, id: Int64) throws -> TaskInfo? {
        try Row.fetchOne(db, sql: "SELECT * FROM task WHERE id = ?", arguments: [id]).map(info)
    }

    static func info(_ row: Row) throws -> TaskInfo {
        let lifecycle = try decode(row["lifecycle"])
        let id: Int64 = row["id"]
        let kindName: String = row["kind"]
        guard let kind = TaskKind(rawValue: kindName) else {
            throw BackupError(.io, "Task \(id) of the catalog has an unknown kind '\(kindName)'.")
        }
        var info = TaskInfo(
            id: id, kind: kind, node: row["node"], source: row["source"],
            state: lifecycle.state, attempts: lifecycle.attempts, fencingToken: lifecycle.fencingToken,
            leaseExpiresAt: lifecycle.leaseExpiresAt, lastError: lifecycle.lastError,
            lastErrorCode: lifecycle.lastErrorCode,
            createdAt: row["createdAt"],
            retryAt: lifecycle.notBefore,
            definition: try fromJSON(row["definition"], "definition", task: id),
            artifacts: try fromJSON(row["artifacts"], "artifacts", task: id),
            progress: try fromJSON(row["progress"], "progress", task: id), detail: row["detail"],
            transfer: try fromJSON(row["transfer"], "transfer", task: id), startedAt: lifecycle.leasedAt,
            endedAt: lifecycle.leaseEndedAt, ownSeconds: lifecycle.leaseSeconds)
        info.trash = try fromJSON(row["trash"], "trash", task: id)
        info.recover = try fromJSON(row["recover"], "recover", task: id)
        return info
    }

    static func json(_ value: (some Encodable)?) throws -> String? {
        guard let value else { return nil }
        return String(decoding: try WireJSON.encoder().encode(value), as: UTF8.self)
    }

    private static func fromJSON<T: Decodable>(_ text: String?, _ column: String, task id: Int64) throws -> T? {
        guard let text else { return nil }
        do { return try WireJSON.decoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw BackupError(.io, "Task \(id) of the catalog has an unreadable \(column): \(error)", cause: error)
        }
    }

    private static func encode(_ lifecycle: TaskLifecycle) throws -> String {
        String(decoding: try WireJSON.encoder().encode(lifecycle), as: UTF8.self)
    }

    private static func decode(_ text: String) throws -> TaskLifecycle {
        try WireJSON.decoder().decode(TaskLifecycle.self, from: Data(text.utf8))
    }
}
