import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// What the purge stage reads and the switches that stop it: the pause switches (site-wide and
/// per node) and the regressions an admin accepted as a source's new baseline.
extension Catalog {
    static func registerPurgeMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v10-purge") { db in
            // scope: '' for the whole site, else a node's name.
            try db.create(table: "purge_pause") { t in
                t.primaryKey("scope", .text)
                t.column("by", .text).notNull()
                t.column("at", .datetime).notNull()
                t.column("reason", .text)
            }
            try db.create(table: "purge_release") { t in
                t.column("origin", .text).notNull()
                t.column("source", .text).notNull()
                t.column("artifactId", .integer).notNull()
                t.column("by", .text).notNull()
                t.column("at", .datetime).notNull()
                t.primaryKey(["origin", "source"])
            }
            try db.create(index: "copy_by_node", on: "copy", columns: ["node", "artifactId"])
            try db.alter(table: "artifact") { t in t.add(column: "replicatedAt", .datetime) }
            // A purge task's trash order (TrashOrder as JSON).
            try db.alter(table: "task") { t in t.add(column: "trash", .text) }
            // Each node's quarantined mutants, as its last inventory listed them.
            try db.create(table: "quarantine_file") { t in
                t.column("node", .text).notNull()
                t.column("path", .text).notNull()
                t.column("artifactPath", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("quarantinedAt", .datetime).notNull()
                t.primaryKey(["node", "path"])
            }
            try db.alter(table: "node") { t in
                t.add(column: "trashBytes", .integer)
                t.add(column: "quarantineBytes", .integer)
            }
            // Each node's last purge stage, for status (a PurgeStanding.Stage as JSON).
            try db.create(table: "purge_stage") { t in
                t.primaryKey("node", .text)
                t.column("stage", .text).notNull()
            }
        }
    }

    /// Every artifact with a copy left, of every source with a copy on `node`, with all their
    /// copies: two queries (artifacts, then their copies in one pass), not one per artifact,
    /// so that a stage over 10,000 copies reads them in a fraction of its time.
    public func purgeArtifacts(node: String) async throws -> [ArtifactInfo] {
        try await pool.read { db in
            let chosen = """
                SELECT * FROM artifact WHERE (origin, source) IN (
                    SELECT DISTINCT a.origin, a.source FROM copy c JOIN artifact a ON a.id = c.artifactId WHERE c.node = ?)
                AND EXISTS (SELECT 1 FROM copy WHERE copy.artifactId = artifact.id)
                """
            let rows = try Row.fetchAll(db, sql: chosen + " ORDER BY id", arguments: [node])
            var copies: [Int64: [CopyInfo]] = [:]
            for c in try Row.fetchAll(
                db,
                sql:
                    "SELECT copy.* FROM copy JOIN (\(chosen)) chosen ON chosen.id = copy.artifactId ORDER BY copy.node",
                arguments: [node])
            {
                copies[c["artifactId"], default: []].append(
                    CopyInfo(
                        node: c["node"], path: c["path"], size: c["size"],
                        state: try Self.copyState(c, node: c["node"]),
                        seenAt: c["seenAt"], verifiedAt: c["verifiedAt"], problem: c["problem"]))
            }
            return try rows.map { try Self.artifactInfo($0, copies: copies[$0["id"]] ?? []) }
        }
    }

    /// Every artifact of `origin`'s `source` with a copy left.
    public func artifacts(origin: String, source: String) async throws -> [ArtifactInfo] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM artifact WHERE origin = ? AND source = ?
                    AND EXISTS (SELECT 1 FROM copy WHERE copy.artifactId = artifact.id) ORDER BY id
                    """, arguments: [origin, source]
            ).map { try Self.artifactInfo($0, db) }
        }
    }

    /// The nodes holding a copy of an artifact of `origin`'s `source`.
    public func holders(origin: String, source: String) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT c.node FROM copy c JOIN artifact a ON a.id = c.artifactId
                    WHERE a.origin = ? AND a.source = ? ORDER BY c.node
                    """, arguments: [origin, source])
        }
    }

    /// Copies on `node` that a queued or leased task reads (a transfer it sends, a verify),
    /// by path, with the task.
    public func activeReads(node: String) async throws -> [String: String] {
        try await pool.read { db in
            var reads: [String: String] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT id, kind, artifacts, json_extract(transfer, '$.path') AS path FROM task
                    WHERE state IN ('queued', 'leased') AND (
                        (kind = 'transfer' AND json_extract(transfer, '$.sender') = ?)
                        OR (kind = 'verify' AND node = ?))
                    """, arguments: [node, node])
            {
                let id: Int64 = row["id"]
                let kind: String = row["kind"]
                if kind == TaskKind.transfer.rawValue, let path: String = row["path"] {
                    reads[path] = "transfer task \(id)"
                } else if let text: String = row["artifacts"] {
                    let paths: [String]
                    do { paths = try WireJSON.decoder().decode([String].self, from: Data(text.utf8)) } catch {
                        throw BackupError(.io, "Task \(id) of the catalog has unreadable artifacts: \(error)")
                    }
                    for path in paths { reads[path] = "verify task \(id)" }
                } else {
                    // A verify of the whole store reads every copy on the node.
                    reads["*"] = "verify task \(id) (the whole store)"
                }
            }
            return reads
        }
    }

    /// The pause switches that are on.
    public func purgePauses() async throws -> [PurgePause] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM purge_pause ORDER BY scope").map { row in
                let scope: String = row["scope"]
                return PurgePause(
                    node: scope.isEmpty ? nil : scope, by: row["by"], at: row["at"], reason: row["reason"])
            }
        }
    }

    /// Turns a pause switch on (`on`) or off; returns whether it changed.
    @discardableResult
    public func setPurgePause(node: String?, on: Bool, by: String, reason: String?, now: Date) async throws -> Bool {
        try await pool.write { db in
            if on {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO purge_pause (scope, by, at, reason) VALUES (?, ?, ?, ?)",
                    arguments: [node ?? "", by, now, reason.map { AuditText.escape($0, limit: 200) }])
            } else {
                try db.execute(sql: "DELETE FROM purge_pause WHERE scope = ?", arguments: [node ?? ""])
            }
            return db.changesCount > 0
        }
    }

    /// The accepted regressions: per `origin/source`, the id of the newest artifact accepted.
    public func purgeReleases() async throws -> [String: Int64] {
        try await pool.read { db in
            var out: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin, source, artifactId FROM purge_release") {
                out["\(row["origin"] as String)/\(row["source"] as String)"] = row["artifactId"]
            }
            return out
        }
    }

    /// Accepts artifact `id` (and every older flag) of `origin`'s `source` as its baseline.
    public func releasePurge(origin: String, source: String, artifact id: Int64, by: String, now: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO purge_release (origin, source, artifactId, by, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [origin, source, id, by, now])
        }
    }

    /// Records that artifacts `ids` had their `copies` verified on backup nodes at `now`
    /// (the first time only).
    public func markReplicated(_ ids: [Int64], now: Date) async throws {
        guard !ids.isEmpty else { return }
        try await pool.write { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE artifact SET replicatedAt = ? WHERE id = ? AND replicatedAt IS NULL",
                    arguments: [now, id])
            }
        }
    }

    /// Records what `stage.node`'s purge stage found and did, replacing the one before.
    public func saveStage(_ stage: PurgeStanding.Stage) async throws {
        let text = try Self.json(stage)
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO purge_stage (node, stage) VALUES (?, ?)", arguments: [stage.node, text])
        }
    }

    /// Each node's last purge stage, by node name.
    public func stages() async throws -> [PurgeStanding.Stage] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT node, stage FROM purge_stage ORDER BY node").map { row in
                let text: String = row["stage"]
                do { return try WireJSON.decoder().decode(PurgeStanding.Stage.self, from: Data(text.utf8)) } catch {
                    throw BackupError(
                        .io, "The catalog's purge stage of node '\(row["node"] as String)' is unreadable: \(error)")
                }
            }
        }
    }

    /// Replaces `node`'s quarantined mutants with what its inventory listed.
    public func recordQuarantine(_ entries: [QuarantineEntry], node: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM quarantine_file WHERE node = ?", arguments: [node])
            for e in entries {
                try db.execute(
                    sql:
                        "INSERT OR REPLACE INTO quarantine_file (node, path, artifactPath, size, quarantinedAt) VALUES (?, ?, ?, ?, ?)",
                    arguments: [node, AuditText.escape(e.path, limit: 400), e.artifactPath, e.size, e.quarantinedAt])
            }
        }
    }

    /// `node`'s quarantined mutants, as its last inventory listed them.
    public func quarantine(node: String) async throws -> [QuarantineEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM quarantine_file WHERE node = ? ORDER BY path", arguments: [node])
                .map {
                    QuarantineEntry(
                        path: $0["path"], artifactPath: $0["artifactPath"], size: $0["size"],
                        quarantinedAt: $0["quarantinedAt"])
                }
        }
    }

    /// Queues a purge task of `node` that names no copy, only `order` for its trash (of run `run`).
    public func submitTrash(node: String, order: TrashOrder, now: Date, run: Int64? = nil) async throws -> TaskInfo {
        try await pool.write { db in
            let task = try Self.insertTask(
                db, SubmitTaskRequest(kind: .purge, node: node, artifacts: []), definition: nil, transfer: nil,
                now: now, maxAttempts: 1, run: run)
            try db.execute(
                sql: "UPDATE task SET trash = ? WHERE id = ?", arguments: [try Self.json(order), task.id])
            var withOrder = task
            withOrder.trash = order
            return withOrder
        }
    }

    /// Whether a purge task of `node` is queued or leased.
    public func purgePending(node: String) async throws -> Int64? {
        try await pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT id FROM task WHERE kind = 'purge' AND node = ? AND state IN ('queued', 'leased')",
                arguments: [node])
        }
    }
}
