import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// What `scm-backup hub restore` does on a new hub once it holds a verified snapshot
/// (``HubSnapshotManifest/check(in:)``): the catalog from it under a new epoch, with purge
/// paused site-wide until an admin resumes it, and the site file from it under this machine's
/// `[coordinator]` table. The fetching is the command's; see `Protocol/hub.md`.
public enum HubRestore {
    /// What a restored catalog holds.
    public struct Restored: Sendable {
        public var previousEpoch: String
        public var epoch: String
        public var artifacts: Int
        public var copies: Int
    }

    /// The site's self-backup source: a `folder` source of a hub node whose path is `folder`.
    public static func selfBackupSource(_ site: SiteConfiguration, folder: String) -> (origin: String, source: String)?
    {
        for node in site.nodes.values.sorted(by: { $0.name < $1.name }) where node.roles.contains(.hub) {
            for (name, source) in node.sources.sorted(by: { $0.key < $1.key })
            where source.kind == .folder
                && (source.path as NSString).standardizingPath == (folder as NSString).standardizingPath
            {
                return (node.name, name)
            }
        }
        return nil
    }

    /// The restored site file: this machine's `[coordinator]` table (and its subtables) from
    /// `bootstrap`, every other table from the snapshot's file `snapshot`.
    public static func mergeSiteFile(bootstrap: String, snapshot: String) -> String {
        let own = sections(of: bootstrap).filter(\.isCoordinator).map(\.text).joined()
        let rest = sections(of: snapshot).filter { !$0.isCoordinator }.map(\.text).joined()
        return
            "# Restored by 'scm-backup hub restore': the coordinator table is this hub's, the rest the snapshot's.\n"
            + own + (own.hasSuffix("\n\n") || own.isEmpty ? "" : "\n") + rest
    }

    private struct Section {
        var header: String?
        var text: String
        var isCoordinator: Bool { header == "coordinator" || header?.hasPrefix("coordinator.") == true }
    }

    /// The file cut at its table headers (`[name]`, `[[name]]`); lines before the first belong to none.
    private static func sections(of text: String) -> [Section] {
        var sections = [Section(header: nil, text: "")]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
        {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
                let name = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
                    .trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                sections.append(Section(header: name, text: ""))
            }
            sections[sections.count - 1].text += line + "\n"
        }
        return sections.filter { !$0.text.isEmpty && ($0.header != nil || !$0.text.allSatisfy(\.isWhitespace)) }
    }

    /// How far a restored catalog's ids and fencing counter jump ahead of the snapshot's.
    public static let counterLeap: Int64 = 1_000_000

    /// The lost hub went on after its snapshot: it handed out task, run and event ids and
    /// fencing tokens the snapshot does not know, and agents journal results by task id. The
    /// restored catalog's counters jump ``counterLeap`` ahead, so that no id it hands out is one
    /// the lost hub may have used (an agent would take a new task for a finished one).
    static func leapCounters(_ db: Database) throws {
        try db.execute(
            sql: "UPDATE counter SET value = value + ? WHERE name = 'fencing'", arguments: [counterLeap])
        for table in ["task", "run", "event"] {
            try db.execute(
                sql: """
                    INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0
                        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)
                    """, arguments: [table, table])
        }
        try db.execute(sql: "UPDATE sqlite_sequence SET seq = seq + ?", arguments: [counterLeap])
    }

    /// Refuses when a catalog, its WAL or its witness is at `path`: a restore never replaces one.
    public static func refuseExistingCatalog(at path: String) throws {
        for file in [path, path + "-wal", Catalog.witnessPath(of: path)] where try FileSystem.linkStatus(file) != nil {
            throw BackupError(
                .refused,
                "'\(file)' exists: a hub restore makes a catalog only where there is none; move it aside first (nothing was changed)."
            )
        }
    }

    /// Makes the catalog at `path` from a snapshot's `catalog.sqlite` with a new epoch (so that
    /// receivers' ledgers never take its fencing tokens for the old hub's), purge paused site-wide
    /// and an event saying so. Refused where a catalog, its WAL or its witness exists: a restore
    /// never replaces a catalog.
    public static func restoreCatalog(
        from snapshot: String, to path: String, actor: PeerIdentity, note: String, now: Date
    ) async throws -> Restored {
        try refuseExistingCatalog(at: path)
        let folder = (path as NSString).deletingLastPathComponent
        let partial = path + ".restore-partial"
        if try FileSystem.linkStatus(partial) != nil { try FileManager.default.removeItem(atPath: partial) }
        try FileManager.default.copyItem(atPath: snapshot, toPath: partial)
        guard chmod(partial, 0o600) == 0 else { throw BackupError.posix("chmod", path: partial, errno: errno) }
        let epoch = SignedEnvelope.randomID()
        let previous: String
        do {
            let queue = try DatabaseQueue(path: partial)
            previous = try await queue.write { db in
                guard try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"] else {
                    throw BackupError(.archiveCorrupt, "the snapshot's catalog fails SQLite's integrity check")
                }
                guard let old = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'epoch'") else {
                    throw BackupError(.archiveCorrupt, "the snapshot's catalog has no epoch")
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE name = 'epoch'", arguments: [epoch])
                try leapCounters(db)
                // No node is online until it registers with this hub (the snapshot's heartbeats
                // were the lost hub's).
                try db.execute(sql: "UPDATE node SET lastHeartbeatAt = NULL")
                return old
            }
            try await queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try queue.close()
            let fd = try FileDescriptor.openForReading(partial)
            try withFileDescriptor(fd) { try $0.sync() }
            try FileSystem.rename(partial, to: path)
            try FileSystem.syncDirectory(folder)
        } catch {
            // The error is the one to report; a partial that cannot be removed is named with it
            // (the next restore removes it before it copies).
            let leftover = FileSystem.removeLeftover(partial)
            throw BackupError(
                (error as? BackupError)?.code ?? .io,
                "The catalog cannot be restored from '\(snapshot)': \(error)\(leftover)")
        }
        // Opening it migrates it to this version and writes its witness with the new epoch.
        let catalog = try Catalog(path: path)
        let reason = "hub restored from a self-backup (\(note)); resume with 'scm-backup purge resume'"
        try await catalog.setPurgePause(node: nil, on: true, by: actor.name, reason: reason, now: now)
        try await catalog.recordEvent(
            actor: actor, request: "hub restore",
            detail: "\(note); catalog epoch \(previous) -> \(epoch); purge paused site-wide", now: now)
        let artifacts = try await catalog.artifacts()
        return Restored(
            previousEpoch: previous, epoch: epoch, artifacts: artifacts.count,
            copies: artifacts.reduce(0) { $0 + $1.copies.count })
    }
}
