import Foundation

/// The floors a store keeps whatever a purge order says (an agent's `agent.toml`: `floor_keep`,
/// `floor_min_age`, `floor_max_per_order`, `trash_hours`). They need no trust in the hub.
public struct PurgeFloors: Sendable, Equatable {
    /// The newest N artifacts of each source that verify are never deleted (at least 1).
    public var keep = 1
    /// Nothing made (by its DNA) less than this long ago is deleted; 0 (the default): no age
    /// floor. `deploy/agent.example.toml` sets a day.
    public var minAge: TimeInterval = 0
    /// At most this many copies go per order; the rest are refused by name.
    public var maxPerOrder = 500
    /// Hours a deleted copy stays in `<store>/.trash` before its bytes are freed; 0: at once.
    public var trashHours: Double = 24

    public init() {}
}

/// A copy in the trash.
public struct TrashEntry: Sendable, Equatable, Codable {
    /// Its store-relative path, where `restoreFromTrash` puts it back.
    public var path: String
    public var size: Int64
    public var deletedAt: Date
}

/// The trash: `<store>/.trash/<YYYYMMDDTHHMMSSZ of the deletion>/<store-relative path>` with
/// its sidecar. Scans skip it (a store-level dot folder), so a trashed copy is not listed as
/// held; its bytes still count in the store's use (``trashBytes()``) until emptied.
extension Store {
    public var trashRoot: String { root + "/.trash" }

    /// The batch folder for deletions made at `deletedAt`.
    func trashFolder(deletedAt: Date) -> String {
        trashRoot + "/" + Self.trashStamp.string(from: deletedAt)
    }

    private static let trashStamp: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f
    }()

    /// Every copy in the trash, oldest deletion first.
    public func trashEntries() throws -> [TrashEntry] {
        guard try FileSystem.linkStatus(trashRoot) != nil else { return [] }
        var entries: [TrashEntry] = []
        for batch in try FileSystem.entries(of: trashRoot).sorted() {
            guard let deletedAt = Self.trashStamp.date(from: batch) else { continue }
            let folder = trashRoot + "/" + batch
            guard let walker = FileManager.default.enumerator(atPath: folder) else { continue }
            for case let relative as String in walker where relative.hasSuffix(".tar.gz") {
                guard let st = try FileSystem.linkStatus(folder + "/" + relative) else { continue }
                entries.append(TrashEntry(path: relative, size: Int64(st.st_size), deletedAt: deletedAt))
            }
        }
        return entries
    }

    /// Bytes the trash holds (artifacts and sidecars).
    public func trashBytes() throws -> Int64 { try Self.bytes(under: trashRoot) }

    /// Bytes the quarantine (`<store>/.quarantine`) holds: mutants kept for review.
    public func quarantineBytes() throws -> Int64 { try Self.bytes(under: root + "/.quarantine") }

    static func bytes(under folder: String) throws -> Int64 {
        guard try FileSystem.linkStatus(folder) != nil, let walker = FileManager.default.enumerator(atPath: folder)
        else { return 0 }
        var total: Int64 = 0
        for case let relative as String in walker {
            if let st = try FileSystem.linkStatus(folder + "/" + relative), st.st_mode & S_IFMT == S_IFREG {
                total += Int64(st.st_size)
            }
        }
        return total
    }

    /// Frees the batches deleted at least `olderThan` seconds before `now`; returns what went.
    @discardableResult
    public func emptyTrash(olderThan: TimeInterval, now: Date = Date()) throws -> [TrashEntry] {
        guard try FileSystem.linkStatus(trashRoot) != nil else { return [] }
        let gone = try trashEntries().filter { now.timeIntervalSince($0.deletedAt) >= olderThan }
        let batches = Set(gone.map { trashFolder(deletedAt: $0.deletedAt) })
        for batch in try FileSystem.entries(of: trashRoot).map({ trashRoot + "/" + $0 }) {
            guard let deletedAt = Self.trashStamp.date(from: (batch as NSString).lastPathComponent),
                now.timeIntervalSince(deletedAt) >= olderThan
            else { continue }
            do { try FileManager.default.removeItem(atPath: batch) } catch {
                throw BackupError(.io, "Cannot empty the trash folder '\(batch)': \(error.localizedDescription)")
            }
        }
        if !batches.isEmpty || !gone.isEmpty { try FileSystem.syncDirectory(trashRoot) }
        return gone
    }

    /// Puts the trashed copy of store-relative `path` (its newest deletion) back where it was,
    /// with its sidecar; refused when the store holds that path again, or the trash lacks it.
    @discardableResult
    public func restoreFromTrash(_ path: String) throws -> StoredArtifact {
        let location = try Self.location(ofRelative: path)
        guard let entry = try trashEntries().last(where: { $0.path == path }) else {
            throw BackupError(.notFound, "The trash of store '\(root)' holds no '\(path)'.")
        }
        let from = trashFolder(deletedAt: entry.deletedAt) + "/" + path
        let target = root + "/" + path
        guard try FileSystem.linkStatus(target) == nil else {
            throw BackupError(.refused, "'\(target)' exists again; the trashed copy is left in '\(from)'.")
        }
        let folder = (target as NSString).deletingLastPathComponent
        try FileSystem.makeDirectories(folder)
        let hasSidecar = try FileSystem.linkStatus(from + ".dna") != nil
        if hasSidecar { try FileSystem.rename(from + ".dna", to: target + ".dna") }
        try Self.moveReceipt(beside: from, to: target)
        try FileSystem.rename(from, to: target)
        try FileSystem.syncDirectory(folder)
        try FileSystem.syncDirectory((from as NSString).deletingLastPathComponent)
        let sourceFolder = root + "/" + location.sourceFolder
        if let newest = try scan([sourceFolder]).artifacts.compactMap(\.location?.stamp).max() {
            try repairLastLink(sourceFolder, newest: newest)
        }
        return StoredArtifact(path: target, location: location, size: entry.size, hasSidecar: hasSidecar)
    }
}
