import Foundation

/// An SQLite database file, copied through SQLite's online backup API (`sqlite3 .backup`),
/// which gives a consistent copy while other processes write. The artifact holds the folder
/// `<name>/` with the database under its own file name.
public struct SQLiteSource: SourceHandler {
    public var kind: SourceKind { .sqlite }
    public init() {}

    public func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot {
        guard let st = try FileSystem.linkStatus(spec.path), (st.st_mode & S_IFMT) == S_IFREG else {
            throw BackupError(
                .sourceInvalid,
                "SQLite database '\(spec.path)' of source '\(spec.name)' does not exist or is not a file.")
        }
        let header = try FileSystem.readPrefix(spec.path, count: 16)
        let probe = try ToolRunner.run(
            spec.tools.sqlite3, ["-readonly", spec.path, "PRAGMA schema_version;"], allowFailure: true)
        guard header == Array("SQLite format 3\0".utf8), probe.status == 0 else {
            throw BackupError(
                .sourceInvalid,
                "'\(spec.path)' (source '\(spec.name)') is not an SQLite database: \(probe.status == 0 ? "it lacks the SQLite header" : probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        try FileSystem.makeDirectories(destination)
        let file = destination + "/" + (spec.path as NSString).lastPathComponent
        try SQLiteSource.onlineBackup(spec.path, to: file, tool: spec.tools.sqlite3)
        try SQLiteSource.checkDatabase(file, tool: spec.tools.sqlite3, dump: false)
        return Snapshot(revision: nil, identity: nil)
    }

    public func check(_ copy: String, spec: SourceSpec) throws {
        try SQLiteSource.checkDatabase(try databaseFile(in: copy), tool: spec.tools.sqlite3, dump: false)
    }

    /// The target is the database file's path.
    public func restore(_ copy: String, to target: String, spec: SourceSpec) throws {
        try FileSystem.rename(try databaseFile(in: copy), to: target)
    }

    private func databaseFile(in copy: String) throws -> String {
        // A check of a WAL-mode copy may leave its -wal and -shm files beside it.
        let files = try FileSystem.entries(of: copy).filter {
            !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") && !$0.hasSuffix("-journal")
        }
        guard files.count == 1 else {
            throw BackupError(
                .archiveCorrupt, "'\(copy)' should hold exactly one database file; it holds \(files.count).")
        }
        return copy + "/" + files[0]
    }

    /// Copies a live database with the online backup API into `target` (absent on entry).
    static func onlineBackup(_ source: String, to target: String, tool: Tool) throws {
        let name = (target as NSString).lastPathComponent
        guard !name.contains("'"), !name.contains("\"") else {
            throw BackupError(
                .invalidArgument,
                "The database file name '\(name)' contains a quote, which sqlite3's .backup cannot take.")
        }
        // `.backup` writes relative to the working folder, so the path needs no quoting rules.
        try ToolRunner.run(tool, [source, ".backup '\(name)'"], in: (target as NSString).deletingLastPathComponent)
    }

    /// `PRAGMA integrity_check` must say ok; with `dump`, `.dump` must succeed too. `file` is a
    /// copy of ours: it is opened read-write, so that SQLite removes a WAL copy's -wal and -shm
    /// files when it closes.
    static func checkDatabase(_ file: String, tool: Tool, dump: Bool) throws {
        let integrity = try ToolRunner.run(tool, [file, "PRAGMA integrity_check;"]).text
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard integrity == "ok" else {
            throw BackupError(
                .archiveCorrupt, "SQLite database '\(file)' fails its integrity check: \(integrity.prefix(300))")
        }
        if dump { try ToolRunner.run(tool, [file, ".dump"], discardOutput: true) }
    }
}
