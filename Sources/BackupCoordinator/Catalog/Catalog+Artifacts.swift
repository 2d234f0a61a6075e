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
/// What the catalog may believe of a report, decided from what the coordinator itself asked
/// for, never from the report.
public enum ReportAuthority: Sendable, Equatable {
    /// The result of a backup task the coordinator leased to the origin, for these of its own
    /// sources: the only source of an artifact's reference digests.
    case originBackup(sources: Set<String>)
    /// The result of a verify task the coordinator leased to the node.
    case verify
    /// The result of an inventory task: copies are listed, not judged.
    case inventory
    /// Copies the node received under tickets the coordinator signed for these paths.
    case receipt(paths: Set<String>)
    /// The result of a purge task; it may remove only the copies its order named.
    case purge(paths: Set<String>)
    /// A report nobody asked for: it may only lower the state of a copy the catalog holds.
    case unsolicited
    /// An inventory of a catalog being rebuilt (`scm-backup catalog rebuild`): copies are
    /// listed as for an inventory, and an artifact gets its reference digest only from a receipt
    /// beside a copy that verifies with one of `keys` and names that copy's path, or from its
    /// origin's own listing of its own artifact; any other stays unconfirmed.
    case rebuild(keys: SigningKeyring)
}

extension ReportAuthority {
    /// Whether the report lists the node's copies (an inventory, also a rebuild's).
    var lists: Bool {
        switch self {
        case .inventory, .rebuild: true
        default: false
        }
    }
}

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

    /// Registered after every v3 migration.
    static func registerTrustMigration(_ migrator: inout DatabaseMigrator) {
        // Which references are the origin's own, and the digest each copy was reported with.
        // An artifact is confirmed where its origin holds an intact copy: the origin's own
        // backup result recorded it. Any other was first named elsewhere and waits for its origin.
        migrator.registerMigration("v4-trust") { db in
            try db.alter(table: "artifact") { t in t.add(column: "confirmed", .boolean).notNull().defaults(to: false) }
            try db.alter(table: "copy") { t in
                t.add(column: "sha256", .text)
                t.add(column: "md5", .text)
            }
            try db.execute(
                sql: """
                    UPDATE artifact SET confirmed = 1 WHERE EXISTS (SELECT 1 FROM copy
                        WHERE copy.artifactId = artifact.id AND copy.node = artifact.origin AND copy.state = 'intact')
                    """)
        }
    }

    /// Records what `node` reported, believing of it only what `authority` allows (see
    /// ``ReportAuthority``), in transactions of at most ``reportBatch`` copies, so that a lease
    /// or a heartbeat waits behind at most one batch of a large inventory, never the whole.
    /// Each copy's change is whole; a complete listing drops the copies it lacks in a last
    /// transaction, after every batch landed.
    public func record(_ report: ArtifactReport, node: String, authority: ReportAuthority, now: Date) async throws {
        if authority.lists, let quarantine = report.quarantine {
            try await recordQuarantine(quarantine, node: node)
        }
        for start in stride(from: 0, to: report.copies.count, by: Self.reportBatch) {
            let batch = report.copies[start..<min(start + Self.reportBatch, report.copies.count)]
            try await pool.write { db in
                for copy in batch { try Self.record(copy, node: node, authority: authority, now: now, db) }
            }
        }
        let listed = Set(report.copies.map(\.path))
        let missingMax = inventoryMissingMax
        try await pool.write { db in
            if report.complete, authority.lists || authority == .verify {
                // Quarantined copies are outside the store's listing; they stay until repaired, as
                // do copies already missing.
                let held = try String.fetchAll(
                    db, sql: "SELECT path FROM copy WHERE node = ? AND state NOT IN ('quarantined', 'missing')",
                    arguments: [node])
                let missing = held.filter { !listed.contains($0) }
                let accepted =
                    try Bool.fetchOne(db, sql: "SELECT accepted FROM inventory_hold WHERE node = ?", arguments: [node])
                    ?? false
                // One copy gone is always believed (and repaired); more than the share is held.
                if missing.count > max(1, Int(missingMax * Double(held.count))), !accepted {
                    let reason =
                        "a listing of \(now.formatted(.iso8601)) would mark \(missing.count) of its \(held.count) copies missing (more than inventory_missing_max \(Int(missingMax * 100)) %): is its store's disk mounted? It is held; 'scm-backup nodes accept-missing --node \(node)' lets the next listing apply"
                    try db.execute(
                        sql:
                            "INSERT OR REPLACE INTO inventory_hold (node, reason, heldAt, accepted) VALUES (?, ?, ?, 0)",
                        arguments: [node, reason, now])
                    return
                }
                // Missing, not forgotten: the copy is owed to the node, and sent again.
                for path in missing {
                    try db.execute(
                        sql: "UPDATE copy SET state = 'missing', seenAt = ?, problem = ? WHERE node = ? AND path = ?",
                        arguments: [now, "not in the listing of \(now.formatted(.iso8601))", node, path])
                }
                try db.execute(sql: "DELETE FROM inventory_hold WHERE node = ?", arguments: [node])
            }
            if case .purge(let ordered) = authority {
                for path in report.deleted ?? [] where ordered.contains(path) {
                    try db.execute(sql: "DELETE FROM copy WHERE node = ? AND path = ?", arguments: [node, path])
                }
            }
        }
    }

    /// A receipt that verifies with `keys`, or nil (a rebuild then simply has no reference from it).
    static func verifiedReceipt(_ text: String, keys: SigningKeyring) -> ArtifactReceipt? {
        do throws(SignedEnvelope.Refusal) { return try ArtifactReceipt.verify(text, keys: keys) } catch { return nil }
    }

    /// The most copies of one report written in one transaction. The default is 100: recording
    /// a copy takes about 0.3 ms, so a lease waits about 30 ms at most behind a large report
    /// (500 gave a p99 of 189 ms in ops/bench/lease.sh, one transaction 1,184 ms).
    public static let reportBatch = 100

    private static func record(
        _ copy: CopyReport, node: String, authority: ReportAuthority, now: Date, _ db: Database
    ) throws {
        let fileName = (copy.path as NSString).lastPathComponent
        let key: [(any DatabaseValueConvertible)?] = [copy.origin, copy.kind, copy.source, copy.stamp, fileName]
        var ownBackup = false
        // The reference a rebuild may take from this copy, and from where.
        var vouched: (digests: ArtifactDigests, by: String)?
        if case .originBackup(let sources) = authority {
            // A backup result speaks only for the origin's own sources that the task named.
            guard copy.origin == node, sources.contains(copy.source) else { return }
            ownBackup = true
        }
        if case .rebuild(let keys) = authority {
            if let text = copy.receipt, let receipt = Self.verifiedReceipt(text, keys: keys), receipt.path == copy.path
            {
                vouched = (ArtifactDigests(size: receipt.size, sha256: receipt.sha256, md5: receipt.md5), "receipt")
            } else if copy.origin == node {
                vouched = (ArtifactDigests(size: copy.size, sha256: copy.sha256, md5: copy.md5), "origin")
            }
        }
        let referenced = ownBackup || vouched != nil
        let reference = vouched?.digests ?? ArtifactDigests(size: copy.size, sha256: copy.sha256, md5: copy.md5)
        let select =
            "SELECT * FROM artifact WHERE origin = ? AND kind = ? AND source = ? AND stamp = ? AND fileName = ?"
        var artifact = try Row.fetchOne(db, sql: select, arguments: StatementArguments(key))
        if artifact == nil {
            // Only a task's result names a new artifact; its digests are a reference only when
            // they are the origin's own.
            switch authority {
            case .unsolicited, .receipt, .purge: return
            case .originBackup, .verify, .inventory, .rebuild: break
            }
            try db.execute(
                sql: """
                    INSERT INTO artifact (origin, kind, source, stamp, fileName, size, sha256, md5, revision, created, firstSeenAt, confirmed)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: StatementArguments(
                    key + [
                        referenced ? reference.size : copy.size, referenced ? reference.sha256 : nil,
                        referenced ? reference.md5 : nil,
                        copy.revision.map { AuditText.escape($0, limit: 80) }, copy.created, now, referenced,
                    ]))
            artifact = try Row.fetchOne(
                db, sql: "SELECT * FROM artifact WHERE id = ?", arguments: [db.lastInsertedRowID])
            if ownBackup, let flags = copy.regressions, !flags.isEmpty {
                try db.execute(
                    sql: "UPDATE artifact SET regressions = ? WHERE id = ?",
                    arguments: [try Catalog.json(flags.map { AuditText.escape($0, limit: 200) }), db.lastInsertedRowID])
            }
        } else if referenced, let row = artifact, row["confirmed"] == false {
            // The origin (or, in a rebuild, a receipt) confirms: its digests become the
            // reference and the copies are judged again.
            let id: Int64 = row["id"]
            try db.execute(
                sql:
                    "UPDATE artifact SET size = ?, sha256 = ?, md5 = ?, revision = ?, created = ?, confirmed = 1 WHERE id = ?",
                arguments: [reference.size, reference.sha256, reference.md5, copy.revision, copy.created, id])
            try rejudgeCopies(of: id, sha256: reference.sha256, md5: reference.md5, db)
            artifact = try Row.fetchOne(db, sql: "SELECT * FROM artifact WHERE id = ?", arguments: [id])
        }
        guard let artifact else { return }
        let id: Int64 = artifact["id"]
        let confirmed: Bool = artifact["confirmed"]
        let previous = try Row.fetchOne(
            db, sql: "SELECT * FROM copy WHERE artifactId = ? AND node = ?", arguments: [id, node])
        var state = copy.state
        var problem = copy.problem.map { AuditText.escape($0) }
        var verifiedAt: Date? = nil
        switch authority {
        case .unsolicited:
            // Only worse news of a copy the catalog already holds on this node.
            guard previous != nil, copy.state.isBad else { return }
            try db.execute(
                sql: "UPDATE copy SET state = ?, problem = ?, seenAt = ? WHERE artifactId = ? AND node = ?",
                arguments: [state, problem, now, id, node])
            return
        case .purge:
            return
        case .receipt(let paths):
            // A copy the coordinator authorised and the receiver computed itself.
            guard paths.contains(copy.path), confirmed else { return }
            state = .intact
            problem = nil
            verifiedAt = now
        case .originBackup:
            state = .intact
            problem = nil
            verifiedAt = now
        case .verify:
            // Judged now by a task the coordinator leased; the coordinator's clock says when.
            if copy.state == .intact || copy.state == .quarantined { verifiedAt = now }
        case .inventory, .rebuild:
            state = .unverified
        }
        // The catalog's digest is the authority: a copy whose digest disagrees is suspect.
        let sha256: String? = artifact["sha256"]
        let md5: String? = artifact["md5"]
        let size: Int64 = artifact["size"]
        if let known = sha256, let claimed = copy.sha256, known != claimed {
            state = .mismatch
            problem = "its sidecar says sha256 \(AuditText.escape(claimed, limit: 80)), the catalog recorded \(known)"
        } else if sha256 == nil, let known = md5, let claimed = copy.md5, known != claimed {
            state = .mismatch
            problem = "its sidecar says md5 \(AuditText.escape(claimed, limit: 80)), the catalog recorded \(known)"
        } else if confirmed, size != copy.size, state == .unverified || state == .intact {
            state = .mismatch
            problem = "\(copy.size) bytes on disk, the catalog recorded \(size)"
        }
        if state == .unverified, let previous {
            // Listed, not verified: the last verdict stands while the file is the same size.
            let previousSize: Int64 = previous["size"]
            if previousSize == copy.size {
                state = try Self.copyState(previous, node: node)
                problem = previous["problem"]
                verifiedAt = previous["verifiedAt"]
            }
        }
        try db.execute(
            sql: """
                INSERT INTO copy (artifactId, node, path, size, state, seenAt, verifiedAt, problem, sha256, md5)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(artifactId, node) DO UPDATE SET path = excluded.path, size = excluded.size,
                    state = excluded.state, seenAt = excluded.seenAt, verifiedAt = excluded.verifiedAt,
                    problem = excluded.problem, sha256 = excluded.sha256, md5 = excluded.md5
                """,
            arguments: [
                id, node, copy.path, copy.size, state, now, verifiedAt, problem,
                copy.sha256.map { AuditText.escape($0, limit: 80) }, copy.md5.map { AuditText.escape($0, limit: 80) },
            ])
    }

    /// After the origin confirmed an artifact: every copy whose reported digest differs from
    /// the new reference is a mismatch.
    private static func rejudgeCopies(of id: Int64, sha256: String?, md5: String?, _ db: Database) throws {
        for row in try Row.fetchAll(
            db, sql: "SELECT node, sha256, md5 FROM copy WHERE artifactId = ?", arguments: [id])
        {
            let node: String = row["node"]
            let copySHA: String? = row["sha256"]
            let copyMD5: String? = row["md5"]
            var problem: String?
            if let sha256, let claimed = copySHA, claimed != sha256 {
                problem = "its sidecar says sha256 \(claimed), the origin recorded \(sha256)"
            } else if sha256 == nil, let md5, let claimed = copyMD5, claimed != md5 {
                problem = "its sidecar says md5 \(claimed), the origin recorded \(md5)"
            }
            if let problem {
                try db.execute(
                    sql: "UPDATE copy SET state = 'mismatch', problem = ? WHERE artifactId = ? AND node = ?",
                    arguments: [problem, id, node])
            }
        }
    }

    /// The catalog's facts of the artifact at store-relative `path` (as a copy on any node),
    /// with its reference digests; nil when the catalog has no such copy.
    public func facts(ofPath path: String) async throws -> (
        facts: TransferTicket.Facts, size: Int64, sha256: String?, md5: String?
    )? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT artifact.* FROM artifact JOIN copy ON copy.artifactId = artifact.id WHERE copy.path = ? LIMIT 1",
                    arguments: [path])
            else { return nil }
            let regressions: String? = row["regressions"]
            let flags = try regressions.map { try WireJSON.decoder().decode([String].self, from: Data($0.utf8)) }
            return (
                TransferTicket.Facts(
                    origin: row["origin"], kind: row["kind"], source: row["source"], revision: row["revision"],
                    created: row["created"], regressions: flags),
                row["size"], row["sha256"], row["md5"]
            )
        }
    }

    /// The references a verify of `node` judges by (``CopyReference``): its copies outside
    /// quarantine (only `paths`, when given) whose artifact the origin confirmed.
    public func references(node: String, paths: [String]?) async throws -> [CopyReference] {
        let wanted = paths.map(Set.init)
        return try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT copy.path, artifact.* FROM copy JOIN artifact ON copy.artifactId = artifact.id
                    WHERE copy.node = ? AND copy.state != 'quarantined' AND artifact.confirmed = 1
                        AND (artifact.sha256 IS NOT NULL OR artifact.md5 IS NOT NULL)
                    ORDER BY copy.path
                    """, arguments: [node]
            ).compactMap { row -> CopyReference? in
                let path: String = row["path"]
                if let wanted, !wanted.contains(path) { return nil }
                let regressions: String? = row["regressions"]
                let flags = try regressions.map { try WireJSON.decoder().decode([String].self, from: Data($0.utf8)) }
                return CopyReference(
                    path: path, size: row["size"], sha256: row["sha256"], md5: row["md5"],
                    facts: TransferTicket.Facts(
                        origin: row["origin"], kind: row["kind"], source: row["source"], revision: row["revision"],
                        created: row["created"], regressions: flags))
            }
        }
    }

    /// The copies of `node` due for verification: not verified for `olderThan` seconds (never
    /// verified first, then the oldest), as many as `budget` bytes of reading allow (at least one).
    public func verificationDue(node: String, olderThan: TimeInterval, budget: Int64?, now: Date) async throws
        -> [String]
    {
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT path, size, verifiedAt FROM copy WHERE node = ? AND state NOT IN ('quarantined', 'missing')
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
    public func copyStates(node: String) async throws -> [String: CopyState] {
        try await pool.read { db in
            var states: [String: CopyState] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, state FROM copy WHERE node = ?", arguments: [node]) {
                states[row["path"]] = try Self.copyState(row, node: node)
            }
            return states
        }
    }

    /// Artifacts with their copies, oldest first; only those with a copy on `node`, or of
    /// `source`, when given. An artifact whose every copy was purged or lost is history, listed
    /// only with `gone`: the list follows what the stores hold, not every backup ever made.
    public func artifacts(node: String? = nil, source: String? = nil, gone: Bool = false) async throws
        -> [ArtifactInfo]
    {
        try await artifacts(node: node, source: source, copyPath: nil, gone: gone)
    }

    /// A page of ``artifacts(node:source:gone:)`` in the order of their ids: at most `limit`,
    /// with an id above `after`. The next page starts after the last id of this one.
    public func artifacts(node: String?, source: String?, gone: Bool, after: Int64?, limit: Int) async throws
        -> [ArtifactInfo]
    {
        try await artifacts(node: node, source: source, copyPath: nil, gone: gone, page: (after ?? 0, limit))
    }

    /// The artifact a copy at store-relative `path` is of, on whichever node.
    public func artifact(copyPath path: String) async throws -> ArtifactInfo? {
        try await artifacts(node: nil, source: nil, copyPath: path, gone: false).first
    }

    /// The artifacts with a copy the catalog holds as quarantined or missing (a repair owed).
    public func artifactsAwaitingRepair() async throws -> [ArtifactInfo] {
        try await artifacts(node: nil, source: nil, copyPath: nil, gone: false, damaged: true)
    }

    /// The artifacts of `sources` whose origin is `origin`, first catalogued at `since` or
    /// later (what a backup queued at `since` made), with their copies.
    public func artifactsMade(origin: String, sources: [String], since: Date) async throws -> [ArtifactInfo] {
        try await artifacts(
            node: nil, source: nil, copyPath: nil, gone: true, made: (origin, sources, since))
    }

    private func artifacts(
        node: String?, source: String?, copyPath: String?, gone: Bool, damaged: Bool = false,
        made: (origin: String, sources: [String], since: Date)? = nil, page: (after: Int64, limit: Int)? = nil
    ) async throws -> [ArtifactInfo] {
        try await pool.read { db in
            var sql = "SELECT * FROM artifact"
            var conditions: [String] = []
            var arguments: [(any DatabaseValueConvertible)?] = []
            if let made {
                conditions.append(
                    "origin = ? AND firstSeenAt >= ? AND source IN (\(made.sources.map { _ in "?" }.joined(separator: ", ")))"
                )
                arguments += [made.origin, made.since] + made.sources
            }
            if let copyPath {
                conditions.append("id IN (SELECT artifactId FROM copy WHERE path = ?)")
                arguments.append(copyPath)
            }
            // A node's artifacts are those it holds; an artifact only missing copies are left
            // of is history (listed with `gone`).
            if let node {
                conditions.append("id IN (SELECT artifactId FROM copy WHERE node = ? AND state != 'missing')")
                arguments.append(node)
            } else if !gone {
                conditions.append("id IN (SELECT artifactId FROM copy WHERE state != 'missing')")
            }
            if let source {
                conditions.append("source = ?")
                arguments.append(source)
            }
            if damaged {
                conditions.append("id IN (SELECT artifactId FROM copy WHERE state IN ('quarantined', 'missing'))")
            }
            if let page {
                conditions.append("id > ?")
                arguments.append(page.after)
            }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            if let page {
                sql += " ORDER BY id LIMIT ?"
                arguments.append(page.limit)
            } else {
                sql += " ORDER BY origin, kind, source, stamp, fileName"
            }
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                try Self.artifactInfo($0, db)
            }
        }
    }

    /// An artifact row with its copies.
    static func artifactInfo(_ row: Row, _ db: Database) throws -> ArtifactInfo {
        let id: Int64 = row["id"]
        let copies = try Row.fetchAll(
            db, sql: "SELECT * FROM copy WHERE artifactId = ? ORDER BY node", arguments: [id]
        ).map { c in
            CopyInfo(
                node: c["node"], path: c["path"], size: c["size"], state: try Self.copyState(c, node: c["node"]),
                seenAt: c["seenAt"], verifiedAt: c["verifiedAt"], problem: c["problem"])
        }
        return try artifactInfo(row, copies: copies)
    }

    /// An artifact row with `copies` already read.
    static func artifactInfo(_ row: Row, copies: [CopyInfo]) throws -> ArtifactInfo {
        let id: Int64 = row["id"]
        return ArtifactInfo(
            origin: row["origin"], kind: row["kind"], source: row["source"], stamp: row["stamp"],
            fileName: row["fileName"], size: row["size"], sha256: row["sha256"], md5: row["md5"],
            revision: row["revision"], created: row["created"], copies: copies, confirmed: row["confirmed"], id: id,
            regressions: try (row["regressions"] as String?).map {
                try WireJSON.decoder().decode([String].self, from: Data($0.utf8))
            },
            firstSeenAt: row["firstSeenAt"], replicatedAt: row["replicatedAt"])
    }

    /// The newest artifact (by stamp) with a copy left, of each `origin/source` asked, by that key;
    /// one indexed lookup each, however long the history.
    public func newestArtifacts(_ sources: [(origin: String, source: String)]) async throws -> [String: ArtifactInfo] {
        try await pool.read { db in
            var newest: [String: ArtifactInfo] = [:]
            for s in sources {
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT * FROM artifact WHERE origin = ? AND source = ?
                            AND EXISTS (SELECT 1 FROM copy WHERE artifactId = artifact.id AND state != 'missing') ORDER BY stamp DESC LIMIT 1
                            """, arguments: [s.origin, s.source])
                else { continue }
                newest[s.origin + "/" + s.source] = try Self.artifactInfo(row, db)
            }
            return newest
        }
    }

    /// For each pairing's server and backup node and each source: the server's artifacts, how
    /// many the backup node holds intact, and the paths it lacks (oldest first, at most `limit`).
    public func holdings(server: String, backup: String, limit: Int = 100) async throws -> [CheckEntry] {
        try await pool.read { db in
            var entries: [CheckEntry] = []
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT a.source AS source, COUNT(*) AS artifacts,
                    SUM(EXISTS (SELECT 1 FROM copy b WHERE b.artifactId = a.id AND b.node = ? AND b.state = 'intact')) AS held
                    FROM artifact a WHERE a.origin = ? AND EXISTS (SELECT 1 FROM copy o WHERE o.artifactId = a.id AND o.node = ?
                    AND o.state != 'missing')
                    GROUP BY a.source ORDER BY a.source
                    """, arguments: [backup, server, server])
            for row in rows {
                let source: String = row["source"]
                let missing = try String.fetchAll(
                    db,
                    sql: """
                        SELECT o.path FROM artifact a JOIN copy o ON o.artifactId = a.id AND o.node = ? AND o.state != 'missing'
                        WHERE a.origin = ? AND a.source = ? AND NOT EXISTS (SELECT 1 FROM copy b WHERE b.artifactId = a.id
                        AND b.node = ? AND b.state = 'intact') ORDER BY a.stamp LIMIT ?
                        """, arguments: [server, server, source, backup, limit])
                let artifacts: Int = row["artifacts"]
                let held: Int = row["held"]
                entries.append(
                    CheckEntry(
                        server: server, backup: backup, source: source, artifacts: artifacts, held: held,
                        missing: missing, missingCount: artifacts - held))
            }
            return entries
        }
    }

    /// Queued and leased tasks per node.
    public func activeTaskCounts() async throws -> [String: (queued: Int, leased: Int)] {
        try await pool.read { db in
            var counts: [String: (queued: Int, leased: Int)] = [:]
            for row in try Row.fetchAll(
                db,
                sql:
                    "SELECT node, state, COUNT(*) AS n FROM task WHERE state IN ('queued', 'leased') GROUP BY node, state"
            ) {
                let node: String = row["node"]
                let state: String = row["state"]
                let n: Int = row["n"]
                if state == "queued" {
                    counts[node, default: (0, 0)].queued = n
                } else {
                    counts[node, default: (0, 0)].leased = n
                }
            }
            return counts
        }
    }

    /// A copy row's state; one the catalog cannot read (written by a hostile agent before
    /// states were typed) is named with its row.
    static func copyState(_ row: Row, node: String) throws -> CopyState {
        let text: String = row["state"]
        guard let state = CopyState(rawValue: text) else {
            let path: String = row["path"]
            throw BackupError(
                .io,
                "The catalog's copy '\(path)' on node '\(node)' has an unknown state '\(text.prefix(40))'; run an inventory of '\(node)' to list it afresh."
            )
        }
        return state
    }
}
