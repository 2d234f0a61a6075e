import Foundation

/// A Trac environment, copied with `trac-admin ENV hotcopy` when the tool is there, otherwise
/// with the built-in equivalent: the environment's files, and its `db/trac.db` through SQLite's
/// online backup API (`sqlite3 .backup`). A copy is checked as the legacy `scm-tgzcheck-trac`
/// did: `PRAGMA integrity_check` says ok and the database dumps.
public struct TracSource: SourceHandler {
    public var kind: SourceKind { .trac }
    public init() {}

    static let database = "db/trac.db"

    public func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot {
        try requireEnvironment(spec)
        // Absent trac-admin selects the built-in copy.
        if (try? ToolRunner.resolve(spec.tools.tracAdmin.program)) != nil {
            try ToolRunner.run(spec.tools.tracAdmin, [spec.path, "hotcopy", destination])
        } else {
            try builtInHotcopy(spec, to: destination)
        }
        try check(destination, spec: spec)
        return Snapshot(revision: nil, identity: nil)
    }

    /// Copies every file but the database, then the database through the online backup API.
    func builtInHotcopy(_ spec: SourceSpec, to destination: String) throws {
        let skip = Set([
            TracSource.database, TracSource.database + "-wal", TracSource.database + "-shm",
            TracSource.database + "-journal",
        ])
        let fm = FileManager.default
        try FileSystem.makeDirectories(destination)
        guard let walker = fm.enumerator(atPath: spec.path) else {
            throw BackupError(.io, "Cannot list Trac environment '\(spec.path)'.")
        }
        while let rel = walker.nextObject() as? String {
            if skip.contains(rel) { continue }
            let from = spec.path + "/" + rel
            let to = destination + "/" + rel
            let attrs = try fm.attributesOfItem(atPath: from)
            if attrs[.type] as? FileAttributeType == .typeDirectory {
                try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
            } else {
                try fm.copyItem(atPath: from, toPath: to)
            }
        }
        try FileSystem.makeDirectories(destination + "/db")
        try SQLiteSource.onlineBackup(
            spec.path + "/" + TracSource.database, to: destination + "/" + TracSource.database, tool: spec.tools.sqlite3
        )
    }

    public func check(_ copy: String, spec: SourceSpec) throws {
        guard try FileSystem.linkStatus(copy + "/VERSION") != nil else {
            throw BackupError(.archiveCorrupt, "'\(copy)' is not a Trac environment: it has no VERSION file.")
        }
        try SQLiteSource.checkDatabase(copy + "/" + TracSource.database, tool: spec.tools.sqlite3, dump: true)
    }

    /// Moves the copy into place and resyncs its repository links when trac-admin is there.
    public func restore(_ copy: String, to target: String, spec: SourceSpec) throws {
        try FileSystem.rename(copy, to: target)
        // No trac-admin: nothing to resync with.
        guard (try? ToolRunner.resolve(spec.tools.tracAdmin.program)) != nil else { return }
        let list = try ToolRunner.run(spec.tools.tracAdmin, [target, "repository", "list"]).text
        let rows = list.split(separator: "\n").drop { !$0.hasPrefix("---") }.dropFirst()
        if rows.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            try ToolRunner.run(spec.tools.tracAdmin, [target, "repository", "resync", "*"])
        }
    }

    private func requireEnvironment(_ spec: SourceSpec) throws {
        let version = spec.path + "/VERSION"
        guard try FileSystem.linkStatus(spec.path) != nil else {
            throw BackupError(
                .sourceInvalid, "Trac environment '\(spec.path)' of source '\(spec.name)' does not exist.")
        }
        guard try FileSystem.linkStatus(version) != nil,
            String(decoding: try FileSystem.readSmallFile(version), as: UTF8.self).hasPrefix("Trac Environment")
        else {
            throw BackupError(
                .sourceInvalid,
                "'\(spec.path)' (source '\(spec.name)') is not a Trac environment: it has no Trac VERSION file.")
        }
    }
}
