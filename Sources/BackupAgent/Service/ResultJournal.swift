import BackupCore
import BackupProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Results the coordinator has not acknowledged yet, kept in the store so that a restart of
/// either side loses none (`Protocol/task-lifecycle.md`, "Durable results").
///
/// Folder `<store>/.scm-backup-results/` (skipped by listings, like every dot entry), one JSON
/// file per result, written atomically and fsynced before the result is sent:
/// `task-<id>-<token>.json` (``TaskEntry``, format `scm-backup-result/1`) for a task's result,
/// `copies-<uuid>.json` (``CopiesEntry``, format `scm-backup-copies/1`) for copies the data
/// port received. A task entry stays after delivery (`delivered` true) for a week: when the
/// coordinator hands the same backup out again (its lease ran out while the hub was away), the
/// agent reports the artifact it made instead of making it again. A copies entry is removed
/// once delivered.
struct ResultJournal: Sendable {
    static let folderName = ".scm-backup-results"
    static let taskFormat = "scm-backup-result/1"
    static let copiesFormat = "scm-backup-copies/1"
    /// How long a delivered (or undeliverable) entry is kept.
    static let keepSeconds: TimeInterval = 7 * 86400

    let folder: String
    /// Checks that the store is the agent's own before anything is written into it.
    let checkStore: @Sendable () throws -> Void

    init(_ configuration: AgentConfiguration) {
        folder = Store(root: configuration.storePath).root + "/" + Self.folderName
        checkStore = { _ = try configuration.store() }
    }

    /// A task's result as journalled.
    struct TaskEntry: Codable, Sendable, Equatable {
        var format = ResultJournal.taskFormat
        var taskId: Int64
        var kind: TaskKind
        var fencingToken: UInt64
        var finishedAt: Date
        /// True once the coordinator answered it (applied it, or refused it for good).
        var delivered: Bool
        var result: ResultRequest
        /// The epoch of the catalog that leased the task (nil: journalled before agents knew it).
        var epoch: String?
    }

    /// A copies report of the data port as journalled.
    struct CopiesEntry: Codable, Sendable, Equatable {
        var format = ResultJournal.copiesFormat
        var id: String
        var madeAt: Date
        var report: ArtifactReport
    }

    func path(of entry: TaskEntry) -> String { folder + "/task-\(entry.taskId)-\(entry.fencingToken).json" }

    /// Writes (or rewrites) a task entry, durably.
    func write(_ entry: TaskEntry) throws {
        try checkStore()
        try FileSystem.makeDirectories(folder)
        try FileSystem.writeAtomically(Array(try WireJSON.encoder().encode(entry)), to: path(of: entry))
    }

    /// Journals a copies report durably; returns the file to remove once it is delivered.
    func write(_ report: ArtifactReport, now: Date = Date()) throws -> String {
        try checkStore()
        try FileSystem.makeDirectories(folder)
        let entry = CopiesEntry(id: UUID().uuidString.lowercased(), madeAt: now, report: report)
        let path = folder + "/copies-\(entry.id).json"
        try FileSystem.writeAtomically(Array(try WireJSON.encoder().encode(entry)), to: path)
        return path
    }

    /// Every task entry, oldest first. An entry that cannot be read is an error naming its file.
    func tasks() throws -> [TaskEntry] {
        try names(prefix: "task-").map { try read(TaskEntry.self, $0) }.sorted { $0.finishedAt < $1.finishedAt }
    }

    /// Every copies entry with its file, oldest first.
    func copies() throws -> [(path: String, entry: CopiesEntry)] {
        try names(prefix: "copies-").map { ($0, try read(CopiesEntry.self, $0)) }.sorted {
            $0.entry.madeAt < $1.entry.madeAt
        }
    }

    /// The successful result journalled for task `id` (under any token), if any.
    /// Only that task's files are read (their names carry its id): a week of entries may be
    /// thousands, and every backup handed out asks.
    func success(of id: Int64) throws -> TaskEntry? {
        try names(prefix: "task-\(id)-").map { try read(TaskEntry.self, $0) }.sorted { $0.finishedAt < $1.finishedAt }
            .last { $0.taskId == id && $0.result.reportedFailure == nil }
    }

    /// Removes a file of the journal (a delivered copies report, an entry past its week).
    func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw BackupError(.io, "Cannot remove result journal file '\(path)': \(String(cString: strerror(errno))).")
        }
    }

    /// Removes the entries older than ``keepSeconds``; returns those removed undelivered.
    func prune(now: Date = Date()) throws -> [TaskEntry] {
        var dropped: [TaskEntry] = []
        for entry in try tasks() where now.timeIntervalSince(entry.finishedAt) > Self.keepSeconds {
            try remove(path(of: entry))
            if !entry.delivered { dropped.append(entry) }
        }
        return dropped
    }

    private func names(prefix: String) throws -> [String] {
        guard try FileSystem.linkStatus(folder) != nil else { return [] }
        return try FileSystem.entries(of: folder).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }
            .map { folder + "/" + $0 }
    }

    private func read<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        do { return try WireJSON.decoder().decode(T.self, from: Data(try FileSystem.readSmallFile(path))) } catch let
            error as DecodingError
        {
            throw BackupError(
                .io,
                "Result journal file '\(path)' cannot be read: \(WireJSON.describe(error)); move it aside to go on.")
        }
    }
}
