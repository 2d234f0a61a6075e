import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Artifacts and their copies per node, filled from the agents' results: the artifact a
/// backup made, the copies an inventory or verify listed, the copies a purge deleted.
///
/// An artifact is identified by origin, kind, source, stamp and file name, not by digest (two
/// nights of an unchanged repository may give equal bytes and are still two artifacts). Its
/// digests are the ones the catalog first learned, normally from the origin's backup result:
/// they are the authority a copy is judged against, not the sidecar beside the copy.
extension Catalog {
    static func registerArtifactMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2-artifacts") { db in
            try db.create(table: "artifact") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("origin", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("source", .text).notNull()
                t.column("stamp", .text).notNull()
                t.column("fileName", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("sha256", .text)
                t.column("md5", .text)
                t.column("revision", .text)
                t.column("created", .datetime)
                t.column("firstSeenAt", .datetime).notNull()
                t.uniqueKey(["origin", "kind", "source", "stamp", "fileName"])
            }
            try db.create(table: "copy") { t in
                t.column("artifactId", .integer).notNull().references("artifact", onDelete: .cascade)
                t.column("node", .text).notNull()
                t.column("path", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("seenAt", .datetime).notNull()
                t.column("verifiedAt", .datetime)
                t.column("problem", .text)
                t.primaryKey(["artifactId", "node"])
            }
            try db.create(index: "copy_by_node_path", on: "copy", columns: ["node", "path"], unique: true)
        }
    }

    /// Records what a task of `node` reported, in one transaction.
    public func record(_ report: ArtifactReport, node: String, now: Date) throws {
        try pool.write { db in
            var listed = Set<String>()
            for copy in report.copies {
                listed.insert(copy.path)
                try Self.record(copy, node: node, now: now, db)
            }
            if report.complete {
                // Quarantined copies are outside the store's listing; they stay until repaired.
                for path in try String.fetchAll(
                    db, sql: "SELECT path FROM copy WHERE node = ? AND state != 'quarantined'", arguments: [node])
                where !listed.contains(path) {
                    try db.execute(sql: "DELETE FROM copy WHERE node = ? AND path = ?", arguments: [node, path])
                }
            }
            for path in report.deleted ?? [] {
                try db.execute(sql: "DELETE FROM copy WHERE node = ? AND path = ?", arguments: [node, path])
            }
        }
    }

    private static func record(_ copy: CopyReport, node: String, now: Date, _ db: Database) throws {
        let fileName = (copy.path as NSString).lastPathComponent
        let key: [(any DatabaseValueConvertible)?] = [copy.origin, copy.kind, copy.source, copy.stamp, fileName]
        var artifact = try Row.fetchOne(
            db,
            sql: "SELECT * FROM artifact WHERE origin = ? AND kind = ? AND source = ? AND stamp = ? AND fileName = ?",
            arguments: StatementArguments(key))
        if artifact == nil {
            try db.execute(
                sql: """
                    INSERT INTO artifact (origin, kind, source, stamp, fileName, size, sha256, md5, revision, created, firstSeenAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: StatementArguments(
                    key + [copy.size, copy.sha256, copy.md5, copy.revision, copy.created, now]))
            artifact = try Row.fetchOne(
                db, sql: "SELECT * FROM artifact WHERE id = ?", arguments: [db.lastInsertedRowID])
        }
        guard let artifact else { return }
        let id: Int64 = artifact["id"]
        var state = copy.state
        var problem = copy.problem
        // The catalog's digest is the authority: a sidecar that disagrees makes the copy suspect.
        let sha256: String? = artifact["sha256"]
        let md5: String? = artifact["md5"]
        let size: Int64 = artifact["size"]
        if let known = sha256, let claimed = copy.sha256, known != claimed {
            state = "mismatch"
            problem = "its sidecar says sha256 \(claimed), the catalog recorded \(known)"
        } else if sha256 == nil, let known = md5, let claimed = copy.md5, known != claimed {
            state = "mismatch"
            problem = "its sidecar says md5 \(claimed), the catalog recorded \(known)"
        } else if size != copy.size && state == "unverified" {
            state = "mismatch"
            problem = "\(copy.size) bytes on disk, the catalog recorded \(size)"
        }
        let previous = try Row.fetchOne(
            db, sql: "SELECT * FROM copy WHERE artifactId = ? AND node = ?", arguments: [id, node])
        var verifiedAt = copy.verifiedAt
        if copy.state == "unverified", state == "unverified", let previous {
            // Listed, not verified: the last verdict stands while the file is the same size.
            let previousSize: Int64 = previous["size"]
            if previousSize == copy.size {
                state = previous["state"]
                problem = previous["problem"]
                verifiedAt = previous["verifiedAt"]
            }
        }
        try db.execute(
            sql: """
                INSERT INTO copy (artifactId, node, path, size, state, seenAt, verifiedAt, problem)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(artifactId, node) DO UPDATE SET path = excluded.path, size = excluded.size,
                    state = excluded.state, seenAt = excluded.seenAt, verifiedAt = excluded.verifiedAt,
                    problem = excluded.problem
                """,
            arguments: [id, node, copy.path, copy.size, state, now, verifiedAt, problem])
    }

    /// The copies of `node` due for verification: not verified for `olderThan` seconds (never
    /// verified first, then the oldest), as many as `budget` bytes of reading allow (at least one).
    public func verificationDue(node: String, olderThan: TimeInterval, budget: Int64?, now: Date) throws -> [String] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT path, size, verifiedAt FROM copy WHERE node = ? AND state != 'quarantined'
                    AND (verifiedAt IS NULL OR verifiedAt <= ?) ORDER BY verifiedAt IS NOT NULL, verifiedAt, path
                    """,
                arguments: [node, now.addingTimeInterval(-olderThan)])
            var paths: [String] = []
            var bytes: Int64 = 0
            for row in rows {
                let size: Int64 = row["size"]
                if let budget, !paths.isEmpty, bytes + size > budget { break }
                paths.append(row["path"])
                bytes += size
            }
            return paths
        }
    }

    /// The states of `node`'s copies by store-relative path.
    public func copyStates(node: String) throws -> [String: String] {
        try pool.read { db in
            var states: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, state FROM copy WHERE node = ?", arguments: [node]) {
                states[row["path"]] = row["state"]
            }
            return states
        }
    }

    /// Artifacts with their copies, oldest first; only those with a copy on `node`, or of
    /// `source`, when given.
    public func artifacts(node: String? = nil, source: String? = nil) throws -> [ArtifactInfo] {
        try pool.read { db in
            var sql = "SELECT * FROM artifact"
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let node {
                conditions.append("id IN (SELECT artifactId FROM copy WHERE node = ?)")
                arguments.append(node)
            }
            if let source {
                conditions.append("source = ?")
                arguments.append(source)
            }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY origin, kind, source, stamp, fileName"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { row in
                let id: Int64 = row["id"]
                let copies = try Row.fetchAll(
                    db, sql: "SELECT * FROM copy WHERE artifactId = ? ORDER BY node", arguments: [id]
                ).map { c in
                    CopyInfo(
                        node: c["node"], path: c["path"], size: c["size"], state: c["state"], seenAt: c["seenAt"],
                        verifiedAt: c["verifiedAt"], problem: c["problem"])
                }
                return ArtifactInfo(
                    origin: row["origin"], kind: row["kind"], source: row["source"], stamp: row["stamp"],
                    fileName: row["fileName"], size: row["size"], sha256: row["sha256"], md5: row["md5"],
                    revision: row["revision"], created: row["created"], copies: copies)
            }
        }
    }
}
