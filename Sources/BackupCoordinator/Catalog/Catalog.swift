import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// The coordinator's state in SQLite (WAL) through GRDB, with versioned migrations, so that a
/// restarted coordinator continues where it stopped. It is the monitoring database too.
///
/// Every access goes through GRDB's async API: reads and writes run on GRDB's own dispatch
/// queues and the caller suspends, so a busy or contended database never holds one of the
/// cooperative pool's threads (of which the hub has as many as cores).
public struct Catalog: Sendable {
    let pool: DatabasePool
    /// Damage SQLite reports while the hub runs, which stops it (``CatalogDamage``).
    public let damage: CatalogDamage
    /// See ``CoordinatorConfiguration/inventoryMissingMax``.
    public var inventoryMissingMax = 0.2

    /// The file beside the catalog that says one was made here, and which (its epoch): a
    /// catalog that is later missing is then an accident to repair, not a new site.
    public static func witnessPath(of path: String) -> String { path + ".epoch" }

    /// Opens (creating and migrating) the catalog at `path`. A new catalog is made only where
    /// none was before: a missing catalog whose witness (``witnessPath(of:)``) says one existed,
    /// a 0-byte file, a file SQLite cannot read or whose pages fail `PRAGMA quick_check`, and a
    /// catalog of another epoch than its witness's are refused with the file and the remedy,
    /// so the hub never starts afresh by accident (its fencing counter back at 0).
    public init(path: String) throws {
        damage = CatalogDamage(path: path)
        let witness = Self.witnessPath(of: path)
        let remedy =
            "restore the catalog from its backup, or rebuild it from the stores ('scm-backup catalog rebuild'); the coordinator does not start on it"
        let witnessed: String? =
            try FileSystem.linkStatus(witness) == nil
            ? nil
            : String(decoding: try FileSystem.readSmallFile(witness), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        switch try FileSystem.linkStatus(path) {
        case .none:
            if let witnessed {
                throw BackupError(
                    .io,
                    "The catalog '\(path)' is missing, but this hub had one (epoch \(witnessed), see '\(witness)'): \(remedy). To start a new, empty catalog on purpose, remove '\(witness)' first."
                )
            }
        case .some(let st) where st.st_size == 0:
            throw BackupError(.io, "The catalog '\(path)' is empty (0 bytes), so it is no catalog: \(remedy).")
        case .some: break
        }
        // The catalog and its WAL hold the site's map of every copy: owner only. SQLite gives
        // the -wal and -shm files the database's own mode.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw BackupError(.io, "Cannot open the catalog '\(path)': \(String(cString: strerror(errno))).")
        }
        close(fd)
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            guard chmod(file, 0o600) == 0 else {
                throw BackupError(
                    .io,
                    "Cannot make the catalog file '\(file)' private (chmod 600): \(String(cString: strerror(errno))).")
            }
        }
        var config = Configuration()
        config.busyMode = .timeout(5)
        do {
            pool = try DatabasePool(path: path, configuration: config)
            let check = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            guard check == ["ok"] else {
                throw BackupError(
                    .io, "SQLite finds it damaged (\(check.prefix(3).joined(separator: "; ")))")
            }
            try Catalog.migrator.migrate(pool)
        } catch {
            let reason = (error as? BackupError)?.message ?? "\(error)"
            throw BackupError(.io, "The catalog '\(path)' cannot be used: \(reason): \(remedy).")
        }
        let epoch = try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'epoch'") }
        guard let epoch else { throw BackupError(.io, "The catalog '\(path)' has no epoch: \(remedy).") }
        if let witnessed, witnessed != epoch {
            throw BackupError(
                .io,
                "The catalog '\(path)' has epoch \(epoch), not this hub's \(witnessed) ('\(witness)'): another site's catalog? \(remedy). To adopt it on purpose, remove '\(witness)' first."
            )
        }
        if witnessed == nil { try FileSystem.writeAtomically(Array("\(epoch)\n".utf8), to: witness) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-nodes") { db in
            try db.create(table: "node") { t in
                t.primaryKey("name", .text)
                t.column("role", .text).notNull()
                t.column("version", .text)
                t.column("storePath", .text)
                t.column("diskTotal", .integer)
                t.column("diskFree", .integer)
                t.column("kinds", .text).notNull().defaults(to: "[]")
                t.column("registeredAt", .datetime)
                t.column("lastHeartbeatAt", .datetime)
            }
        }
        registerTaskMigrations(&migrator)
        migrator.registerMigration("v2-node-clock") { db in
            try db.alter(table: "node") { t in t.add(column: "clockOffset", .double) }
        }
        registerArtifactMigrations(&migrator)
        migrator.registerMigration("v3-transfers") { db in
            try db.alter(table: "node") { t in t.add(column: "dataPort", .integer) }
            try db.alter(table: "task") { t in t.add(column: "transfer", .text) }
        }
        migrator.registerMigration("v3-task-retry") { db in
            try db.alter(table: "task") { t in t.add(column: "notBefore", .datetime) }
        }
        registerTrustMigration(&migrator)
        // The catalog's random epoch: tickets and purge orders name it, and a receiver's ledger
        // keys the fencing tokens it saw by it, so a rebuilt catalog starting its counter anew
        // is never confused with this one.
        migrator.registerMigration("v5-epoch") { db in
            try db.create(table: "meta") { t in
                t.primaryKey("name", .text)
                t.column("value", .text).notNull()
            }
            try db.execute(
                sql: "INSERT INTO meta (name, value) VALUES ('epoch', ?)", arguments: [SignedEnvelope.randomID()])
            try db.alter(table: "artifact") { t in t.add(column: "regressions", .text) }
        }
        registerEventMigrations(&migrator)
        // A complete listing that would mark too many of a node's copies missing, held.
        migrator.registerMigration("v6-inventory-hold") { db in
            try db.create(table: "inventory_hold") { t in
                t.primaryKey("node", .text)
                t.column("reason", .text).notNull()
                t.column("heldAt", .datetime).notNull()
                t.column("accepted", .boolean).notNull().defaults(to: false)
            }
        }
        // Lookups a long history must not scan: a copy by its path (repairs), tasks by state
        // (the open tasks' list) and by age (pruning), events by age.
        migrator.registerMigration("v7-history-indexes") { db in
            try db.create(index: "copy_by_path", on: "copy", columns: ["path"])
            try db.create(index: "task_by_state", on: "task", columns: ["state", "id"])
            try db.create(index: "task_by_created", on: "task", columns: ["createdAt"])
            try db.create(index: "event_by_at", on: "event", columns: ["at"])
        }
        // The scheduler's memory, so that a restart neither repeats nor forgets a slot.
        migrator.registerMigration("v8-schedule-state") { db in
            try db.create(table: "schedule_state") { t in
                t.column("node", .text).notNull()
                t.column("source", .text).notNull()
                t.column("lastSlot", .datetime).notNull()
                t.column("firedAt", .datetime)
                t.column("task", .integer)
                t.column("outcome", .text).notNull()
                t.primaryKey(["node", "source"])
            }
        }
        registerRunMigrations(&migrator)
        registerPurgeMigrations(&migrator)
        registerRecoverMigrations(&migrator)
        registerAlertMigrations(&migrator)
        registerSampleMigrations(&migrator)
        return migrator
    }

    /// Writes a consistent copy of the whole catalog to a new file at `path` with SQLite's
    /// online backup, inside one read transaction (writers go on meanwhile), then fsyncs it.
    /// A file already at `path` is a failed snapshot's leftover, and is replaced.
    public func snapshot(to path: String) async throws {
        if try FileSystem.linkStatus(path) != nil { try FileManager.default.removeItem(atPath: path) }
        let destination = try DatabaseQueue(path: path)
        try await pool.read { db in
            try destination.writeWithoutTransaction { target in try db.backup(to: target) }
        }
        try destination.close()
        let fd = try FileDescriptor.openForReading(path)
        try withFileDescriptor(fd) { try $0.sync() }
    }

    /// The catalog's epoch (128 random bits, hex), fixed when it was made.
    public func epoch() async throws -> String {
        try await pool.read { db in
            guard let epoch = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'epoch'") else {
                throw BackupError(.io, "The catalog has no epoch in its meta table; it is damaged.")
            }
            return epoch
        }
    }

    /// Records an agent's registration (insert or update).
    /// What the agent says of itself is stored with control characters escaped.
    public func register(name: String, role: NodeRole, _ request: RegisterRequest, now: Date) async throws {
        let kinds = String(
            decoding: try JSONEncoder().encode(request.kinds.prefix(64).map { AuditText.escape($0, limit: 40) }),
            as: UTF8.self)
        // Information only (see ``sourceRefusals(_:)``), bounded like everything an agent says.
        let roots = try request.sourceRoots.map {
            String(
                decoding: try JSONEncoder().encode(Array($0.prefix(64).map { String($0.prefix(1024)) })), as: UTF8.self)
        }
        let steps = try request.preBackupSteps.map {
            String(
                decoding: try JSONEncoder().encode(Array($0.prefix(256).map { String($0.prefix(64)) })), as: UTF8.self)
        }
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO node (name, role, version, storePath, diskTotal, diskFree, kinds, registeredAt, lastHeartbeatAt, clockOffset, dataPort,
                        sourceRoots, preBackupSteps)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET role = excluded.role, version = excluded.version,
                        storePath = excluded.storePath, diskTotal = excluded.diskTotal, diskFree = excluded.diskFree,
                        kinds = excluded.kinds, registeredAt = excluded.registeredAt, lastHeartbeatAt = excluded.lastHeartbeatAt,
                        clockOffset = excluded.clockOffset, dataPort = excluded.dataPort, sourceRoots = excluded.sourceRoots,
                        preBackupSteps = excluded.preBackupSteps
                    """,
                arguments: [
                    name, role.rawValue, AuditText.escape(request.version, limit: 100),
                    AuditText.escape(request.storePath, limit: 1024), request.diskTotal, request.diskFree, kinds,
                    now, now, request.agentClock.map { $0 - now.timeIntervalSince1970 }, request.dataPort, roots, steps,
                ])
        }
    }

    /// Records a heartbeat (and the agent's clock offset when it sent its clock); false if
    /// the node never registered.
    public func heartbeat(
        name: String, diskFree: Int64, agentClock: Double? = nil, trashBytes: Int64? = nil,
        quarantineBytes: Int64? = nil, now: Date
    ) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE node SET diskFree = ?, lastHeartbeatAt = ?, clockOffset = ?,
                        trashBytes = coalesce(?, trashBytes), quarantineBytes = coalesce(?, quarantineBytes)
                    WHERE name = ?
                    """,
                arguments: [
                    diskFree, now, agentClock.map { $0 - now.timeIntervalSince1970 }, trashBytes, quarantineBytes, name,
                ])
            return db.changesCount > 0
        }
    }

    /// Whether `name` has registered.
    public func isRegistered(_ name: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM node WHERE name = ?)", arguments: [name]) ?? false
        }
    }

    /// The version `name` registered with, if any.
    public func version(of name: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT version FROM node WHERE name = ?", arguments: [name])
        }
    }

    /// The data port `name` registered with, if any.
    public func dataPort(of name: String) async throws -> Int? {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT dataPort FROM node WHERE name = ?", arguments: [name])
        }
    }

    /// Lets the next complete listing of `node` apply although it marks many copies missing
    /// (an admin confirmed the loss); false when no listing of it is held.
    public func acceptMissing(node: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "UPDATE inventory_hold SET accepted = 1 WHERE node = ?", arguments: [node])
            return db.changesCount > 0
        }
    }

    /// Every known node; online when its last heartbeat is within `onlineWithin` seconds.
    public func nodes(now: Date, onlineWithin: TimeInterval) async throws -> [NodeStatus] {
        try await pool.read { db in
            let holds = Dictionary(
                try Row.fetchAll(db, sql: "SELECT node, reason, accepted FROM inventory_hold").map { row in
                    let accepted: Bool = row["accepted"]
                    let reason: String = row["reason"]
                    return (row["node"] as String, accepted ? reason + " (accepted: the next listing applies)" : reason)
                }, uniquingKeysWith: { a, _ in a })
            return try Row.fetchAll(db, sql: "SELECT * FROM node ORDER BY name").map { row in
                let kindsText: String = row["kinds"]
                let name: String = row["name"]
                let kinds: [String]
                do { kinds = try JSONDecoder().decode([String].self, from: Data(kindsText.utf8)) } catch {
                    throw BackupError(
                        .io,
                        "The catalog's kinds of node '\(name)' are not a JSON array of names: '\(kindsText.prefix(80))'."
                    )
                }
                let last: Date? = row["lastHeartbeatAt"]
                return NodeStatus(
                    name: row["name"], role: row["role"], version: row["version"], storePath: row["storePath"],
                    diskTotal: row["diskTotal"], diskFree: row["diskFree"], kinds: kinds,
                    registeredAt: row["registeredAt"],
                    lastHeartbeatAt: last, online: last.map { now.timeIntervalSince($0) <= onlineWithin } ?? false,
                    clockOffsetSeconds: row["clockOffset"], dataPort: row["dataPort"], hold: holds[name],
                    trashBytes: row["trashBytes"], quarantineBytes: row["quarantineBytes"])
            }
        }
    }
}

// States are stored as their wire spelling.
extension TaskState: DatabaseValueConvertible {}
extension CopyState: DatabaseValueConvertible {}
