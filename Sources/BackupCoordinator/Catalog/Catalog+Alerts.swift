import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// The alert service's state (``AlertBook``) and the admins' silences.
extension Catalog {
    static func registerAlertMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v12-alerts") { db in
            // One row per alert (rule and subject): its AlertBook.Track as JSON.
            try db.create(table: "alert_track") { t in
                t.primaryKey("key", .text)
                t.column("track", .text).notNull()
            }
            try db.create(table: "alert_silence") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("rule", .text).notNull()
                t.column("source", .text)
                t.column("node", .text)
                t.column("until", .datetime).notNull()
                t.column("reason", .text).notNull()
                t.column("by", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            // When each agent's certificate expires, as it last registered.
            try db.alter(table: "node") { t in t.add(column: "certificateNotAfter", .datetime) }
        }
    }

    /// Notes when `node`'s certificate expires (at its registration).
    public func noteCertificate(node: String, notAfter: Date?) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE node SET certificateNotAfter = ? WHERE name = ?", arguments: [notAfter, node])
        }
    }

    /// Each registered agent's certificate expiry.
    public func agentCertificates() async throws -> [AlertRules.Certificate] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT name, certificateNotAfter FROM node WHERE certificateNotAfter IS NOT NULL ORDER BY name"
            ).map { row in
                let name: String = row["name"]
                return AlertRules.Certificate(name: "agent " + name, node: name, notAfter: row["certificateNotAfter"])
            }
        }
    }

    public func alertBook() async throws -> AlertBook {
        try await pool.read { db in
            var book = AlertBook()
            for row in try Row.fetchAll(db, sql: "SELECT key, track FROM alert_track") {
                let key: String = row["key"]
                let text: String = row["track"]
                do {
                    book.tracks[key] = try WireJSON.decoder().decode(AlertBook.Track.self, from: Data(text.utf8))
                } catch {
                    throw BackupError(
                        .io, "Alert '\(key)' of the catalog does not decode: \(WireJSON.describe(error)).")
                }
            }
            return book
        }
    }

    /// Replaces the stored alerts with `book`'s, in one transaction.
    public func saveAlertBook(_ book: AlertBook) async throws {
        let rows = try book.tracks.map {
            ($0.key, String(decoding: try WireJSON.encoder().encode($0.value), as: UTF8.self))
        }
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM alert_track")
            for (key, track) in rows {
                try db.execute(sql: "INSERT INTO alert_track (key, track) VALUES (?, ?)", arguments: [key, track])
            }
        }
    }

    public func addSilence(_ request: SilenceRequest, by: String, now: Date) async throws -> SilenceInfo {
        let until = now.addingTimeInterval(TimeInterval(request.seconds))
        let id = try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO alert_silence (rule, source, node, until, reason, by, createdAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [request.rule.rawValue, request.source, request.node, until, request.reason, by, now])
            return db.lastInsertedRowID
        }
        return SilenceInfo(
            id: id, rule: request.rule, source: request.source, node: request.node, until: until,
            reason: request.reason, by: by)
    }

    /// The silences in force at `now`.
    public func silences(at now: Date) async throws -> [SilenceInfo] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alert_silence WHERE until > ? ORDER BY id", arguments: [now])
                .compactMap { row in
                    guard let rule = AlertRule(rawValue: row["rule"]) else { return nil }
                    return SilenceInfo(
                        id: row["id"], rule: rule, source: row["source"], node: row["node"], until: row["until"],
                        reason: row["reason"], by: row["by"])
                }
        }
    }

    /// Copies that failed verification (mutant, quarantined, mismatch), at most `limit`.
    public func failedCopies(limit: Int = 1000) async throws -> [AlertRules.FailedCopy] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT node, path, state, problem FROM copy
                    WHERE state IN ('mutant', 'quarantined', 'mismatch') ORDER BY node, path LIMIT ?
                    """, arguments: [limit]
            ).compactMap { row in
                guard let state = CopyState(rawValue: row["state"]) else { return nil }
                return AlertRules.FailedCopy(
                    node: row["node"], path: row["path"], state: state, problem: row["problem"])
            }
        }
    }
}

extension Catalog {
    /// A `meta` row's value (the daily report's last day, …), nil when none.
    public func metaValue(_ name: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [name])
        }
    }

    public func setMetaValue(_ name: String, _ value: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                arguments: [name, value])
        }
    }
}
