import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// A catalog rebuilt from the stores (`scm-backup catalog rebuild`): made anew where the lost
/// one was, with an inventory queued for every node of the site; while it lasts, inventories are
/// recorded as ``ReportAuthority/rebuild(keys:)`` and purge is paused site-wide. It ends when every
/// one of those inventories has ended; what it found is kept (`meta` row `rebuild`).
public struct RebuildState: Codable, Sendable, Equatable {
    /// The epoch of the catalog that was lost, as its witness named it (nil: no witness).
    public var lostEpoch: String?
    public var startedAt: Date
    /// The inventory tasks it waits for, by node.
    public var tasks: [String: Int64]
    /// The tasks whose inventory is recorded in full (a task ends before its report is written).
    public var recorded: [Int64]?
    public var finishedAt: Date?
    public var artifacts: Int?
    public var copies: Int?
    /// Artifacts without a reference digest (no verifying receipt, no origin's listing), and their copies.
    public var unconfirmedArtifacts: Int?
    public var unconfirmedCopies: Int?
    /// Nodes whose inventory failed or was cancelled: their copies are not in the catalog.
    public var failedNodes: [String]?
}

extension Catalog {
    /// How far a rebuilt catalog's counters start: the milliseconds since 1970 at the rebuild,
    /// more than any earlier catalog of this hub can have counted, so that no task id or fencing
    /// token it hands out is one an agent saw from the lost catalog (agents journal by task id).
    static func rebuildCounterBase(_ now: Date) -> Int64 { Int64(now.timeIntervalSince1970 * 1000) }

    /// Makes the catalog at `path` anew for a rebuild: refused where a catalog or its WAL is (a
    /// damaged one is moved aside by the admin first, never deleted here); the lost catalog's
    /// witness is kept as `<witness>.lost-<stamp>`; counters start at ``rebuildCounterBase(_:)``;
    /// purge is paused site-wide; an inventory of each of `nodes` is queued.
    public static func startRebuild(
        at path: String, nodes: [String], actor: PeerIdentity, now: Date
    ) async throws -> (catalog: Catalog, state: RebuildState, epoch: String) {
        for file in [path, path + "-wal"] where try FileSystem.linkStatus(file) != nil {
            throw BackupError(
                .refused,
                "'\(file)' exists: a rebuild makes a catalog only where the old one is gone; if it is damaged, move it aside first (nothing was changed)."
            )
        }
        let witness = witnessPath(of: path)
        var lost: String?
        if try FileSystem.linkStatus(witness) != nil {
            lost = String(decoding: try FileSystem.readSmallFile(witness), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let stamp = ArtifactLocation.stamp(for: now).replacingOccurrences(of: "/", with: "")
            try FileSystem.rename(witness, to: witness + ".lost-\(stamp)")
        }
        let catalog = try Catalog(path: path)
        let lostEpoch = lost
        let base = rebuildCounterBase(now)
        let reason =
            "catalog rebuilt from the stores; resume with 'scm-backup purge resume' once its copies are verified"
        let state = try await catalog.pool.write { db -> RebuildState in
            try db.execute(sql: "UPDATE counter SET value = max(value, ?) WHERE name = 'fencing'", arguments: [base])
            for table in ["task", "run"] {
                try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = ?", arguments: [table])
                try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", arguments: [table, base])
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO purge_pause (scope, by, at, reason) VALUES ('', ?, ?, ?)",
                arguments: [actor.name, now, reason])
            var tasks: [String: Int64] = [:]
            for node in nodes.sorted() {
                tasks[node] =
                    try insertTask(
                        db, SubmitTaskRequest(kind: .inventory, node: node), definition: nil, transfer: nil, now: now,
                        maxAttempts: 5, run: nil
                    ).id
            }
            let state = RebuildState(lostEpoch: lostEpoch, startedAt: now, tasks: tasks)
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (name, value) VALUES ('rebuild', ?)", arguments: [try json(state)])
            return state
        }
        let epoch = try await catalog.epoch()
        try await catalog.recordEvent(
            actor: actor, request: "catalog rebuild",
            detail:
                "new catalog epoch \(epoch) (lost: \(lost ?? "unknown")); inventories of \(nodes.count) nodes queued; purge paused site-wide",
            now: now)
        return (catalog, state, epoch)
    }

    /// The rebuild of this catalog, if it had one.
    public func rebuildState() async throws -> RebuildState? {
        try await pool.read { db in try Self.rebuildState(db) }
    }

    static func rebuildState(_ db: Database) throws -> RebuildState? {
        guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'rebuild'") else {
            return nil
        }
        return try WireJSON.decoder().decode(RebuildState.self, from: Data(text.utf8))
    }

    /// Whether a rebuild is under way (its inventories are recorded as a rebuild's).
    public func rebuilding() async throws -> Bool { try await rebuildState().map { $0.finishedAt == nil } ?? false }

    /// Notes that inventory task `id` of the rebuild is recorded in full.
    public func noteRebuildRecorded(_ id: Int64) async throws {
        try await pool.write { db in
            guard var state = try Self.rebuildState(db), state.finishedAt == nil, state.tasks.values.contains(id) else {
                return
            }
            state.recorded = Array(Set((state.recorded ?? []) + [id])).sorted()
            try db.execute(
                sql: "UPDATE meta SET value = ? WHERE name = 'rebuild'", arguments: [try Self.json(state)])
        }
    }

    /// Ends the rebuild once each of its inventories has ended, counting what it found; returns
    /// the state when this call ended it.
    public func finishRebuildIfDone(now: Date) async throws -> RebuildState? {
        try await pool.write { db in
            guard var state = try Self.rebuildState(db), state.finishedAt == nil else { return nil }
            var failed: [String] = []
            for (node, id) in state.tasks {
                guard let task = try Self.task(db, id: id) else { continue }
                guard task.state.isFinal else { return nil }
                if task.state != .succeeded {
                    failed.append(node)
                } else if !(state.recorded ?? []).contains(id) {
                    return nil
                }
            }
            state.finishedAt = now
            state.artifacts = try Int.fetchOne(db, sql: "SELECT count(*) FROM artifact") ?? 0
            state.copies = try Int.fetchOne(db, sql: "SELECT count(*) FROM copy") ?? 0
            state.unconfirmedArtifacts =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM artifact WHERE confirmed = 0") ?? 0
            state.unconfirmedCopies =
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM copy JOIN artifact ON artifact.id = copy.artifactId WHERE confirmed = 0")
                ?? 0
            state.failedNodes = failed.isEmpty ? nil : failed.sorted()
            try db.execute(
                sql: "UPDATE meta SET value = ? WHERE name = 'rebuild'", arguments: [try Self.json(state)])
            return state
        }
    }

    /// Per node: its copies, and those of them whose artifact has no reference digest.
    public func copyCounts() async throws -> [(node: String, copies: Int, unconfirmed: Int)] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT copy.node AS node, count(*) AS copies, sum(artifact.confirmed = 0) AS unconfirmed
                    FROM copy JOIN artifact ON artifact.id = copy.artifactId GROUP BY copy.node ORDER BY copy.node
                    """
            ).map { (node: $0["node"], copies: $0["copies"], unconfirmed: $0["unconfirmed"]) }
        }
    }
}
