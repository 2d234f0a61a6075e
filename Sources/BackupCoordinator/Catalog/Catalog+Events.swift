import BackupProtocol
import Foundation
import GRDB

/// The audit trail: every accepted admin request, with the certificate that made it.
extension Catalog {
    static func registerEventMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-events") { db in
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("actor", .text).notNull()
                t.column("role", .text).notNull()
                t.column("serial", .text).notNull()
                t.column("request", .text).notNull()
                t.column("detail", .text).notNull()
            }
        }
    }

    /// Records an accepted admin request; returns it.
    @discardableResult
    public func recordEvent(
        actor: PeerIdentity, request: String, detail: String, now: Date
    ) async throws -> EventInfo {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO event (at, actor, role, serial, request, detail) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    now, AuditText.escape(actor.name), actor.role.rawValue, actor.serial,
                    AuditText.escape(request, limit: 300), AuditText.escape(detail, limit: 4000),
                ])
            return EventInfo(
                id: db.lastInsertedRowID, at: now, actor: AuditText.escape(actor.name), role: actor.role.rawValue,
                serial: actor.serial, request: AuditText.escape(request, limit: 300),
                detail: AuditText.escape(detail, limit: 4000))
        }
    }

    /// The newest `limit` events (older than event `before` when given), newest first.
    public func events(limit: Int = 100, before: Int64? = nil) async throws -> [EventInfo] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM event WHERE id < ? ORDER BY id DESC LIMIT ?",
                arguments: [before ?? Int64.max, limit]
            ).map { row in
                EventInfo(
                    id: row["id"], at: row["at"], actor: row["actor"], role: row["role"], serial: row["serial"],
                    request: row["request"], detail: row["detail"])
            }
        }
    }
}
