import BackupCore
import BackupProtocol
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The agent on its own while the hub is away (`Protocol/task-lifecycle.md`, "Without the
/// hub"). It keeps the hub's newest ``FallbackPlan`` in `<store>/.scm-backup-fallback/plan.json`;
/// when a slot of a planned source passes and no call to the hub has succeeded from the slot's
/// time for `fallback_grace` seconds, it backs the source up itself (the newest missed slot
/// only, like the hub's catch-up), never purges, and stops when the store's free space is below
/// `fallback_min_free`. Each artifact it makes is journalled (`report-*.json`, fsynced) and
/// reported to the hub once it answers again (``FallbackReport``); `state.json` holds the last
/// slot it handled per source, so a restart runs nothing twice.
struct FallbackKeeper: Sendable {
    static let folderName = ".scm-backup-fallback"
    static let stateFormat = "scm-backup-fallback-state/1"
    static let reportFormat = "scm-backup-fallback-report/1"

    let folder: String

    init(_ configuration: AgentConfiguration) {
        folder = Store(root: configuration.storePath).root + "/" + Self.folderName
    }

    /// The last slot this agent handled on its own, per source.
    struct State: Codable, Sendable, Equatable {
        var format = FallbackKeeper.stateFormat
        var handled: [String: Date] = [:]
        /// What became of each source's last slot (made …, skipped: …), for the log and the operator.
        var outcomes: [String: String] = [:]
        /// The last verify window handled here, and the copy the last verify ended with (the
        /// next one goes on after it, so that night by night every copy is read).
        var verifiedWindow: Date?
        var verifyCursor: String?
    }

    /// A report waiting for the hub.
    struct Pending: Codable, Sendable, Equatable {
        var format = FallbackKeeper.reportFormat
        var report: FallbackReport
    }

    func plan() throws -> FallbackPlan? {
        let path = folder + "/plan.json"
        guard try FileSystem.linkStatus(path) != nil else { return nil }
        do {
            return try WireJSON.decoder().decode(
                FallbackPlan.self, from: Data(try FileSystem.readSmallFile(path, limit: 16 << 20)))
        } catch let error as DecodingError {
            throw BackupError(.invalidArgument, "'\(path)' does not decode: \(WireJSON.describe(error)).")
        }
    }

    /// Keeps `plan` when it differs from the one on disk; one whose schedules do not parse is
    /// refused (the one kept before stays).
    func keep(_ plan: FallbackPlan) throws {
        for entry in plan.entries { _ = try entry.latestSlot(after: Date(), upTo: Date()) }
        _ = try plan.verify?.latestWindow(after: Date(), upTo: Date())
        if try self.plan() == plan { return }
        try FileSystem.makeDirectories(folder, mode: 0o750)
        try FileSystem.writeAtomically(Array(try WireJSON.encoder().encode(plan)), to: folder + "/plan.json")
    }

    func state() throws -> State {
        let path = folder + "/state.json"
        guard try FileSystem.linkStatus(path) != nil else { return State() }
        do {
            return try WireJSON.decoder().decode(State.self, from: Data(try FileSystem.readSmallFile(path)))
        } catch let error as DecodingError {
            throw BackupError(.invalidArgument, "'\(path)' does not decode: \(WireJSON.describe(error)).")
        }
    }

    func write(_ state: State) throws {
        try FileSystem.makeDirectories(folder, mode: 0o750)
        try FileSystem.writeAtomically(Array(try WireJSON.encoder().encode(state)), to: folder + "/state.json")
    }

    /// Journals a report (fsynced) before the slot is marked handled.
    func journal(_ report: FallbackReport) throws {
        try FileSystem.makeDirectories(folder, mode: 0o750)
        let stamp = ArtifactLocation.basicStamp(for: report.madeAt)
        try FileSystem.writeAtomically(
            Array(try WireJSON.encoder().encode(Pending(report: report))),
            to: folder + "/report-\(stamp)-\(report.source).json")
    }

    /// The reports waiting for the hub, oldest first.
    func pending() throws -> [(path: String, report: FallbackReport)] {
        guard try FileSystem.linkStatus(folder) != nil else { return [] }
        return try FileSystem.entries(of: folder).filter { $0.hasPrefix("report-") && $0.hasSuffix(".json") }.sorted()
            .map { name in
                let path = folder + "/" + name
                do {
                    return (
                        path,
                        try WireJSON.decoder().decode(Pending.self, from: Data(try FileSystem.readSmallFile(path)))
                            .report
                    )
                } catch let error as DecodingError {
                    throw BackupError(.invalidArgument, "'\(path)' does not decode: \(WireJSON.describe(error)).")
                }
            }
    }

    /// Which source's slot is due to run on its own at `now`, with the slot: the newest slot of
    /// each planned source after the last one handled (by the hub or here), only when no call to
    /// the hub has succeeded since that slot and `grace` has passed since it.
    static func due(
        _ plan: FallbackPlan, state: State, lastContact: Date?, now: Date, grace: TimeInterval, since start: Date
    ) throws -> [(entry: FallbackPlan.Entry, slot: Date)] {
        try plan.entries.compactMap { entry in
            let name = entry.definition.name
            let after = max(entry.lastSlot ?? start, state.handled[name] ?? .distantPast)
            guard let slot = try entry.latestSlot(after: after, upTo: now.addingTimeInterval(-grace)) else {
                return nil
            }
            if let lastContact, lastContact >= slot { return nil }  // The hub answered since: its slot.
            return (entry, slot)
        }
    }

    /// The verify window due at `now`, as ``due(_:state:lastContact:now:grace:since:)`` for slots.
    static func verifyDue(
        _ plan: FallbackPlan, state: State, lastContact: Date?, now: Date, grace: TimeInterval, since start: Date
    ) throws -> Date? {
        guard let verify = plan.verify else { return nil }
        let after = max(verify.lastWindow ?? start, state.verifiedWindow ?? .distantPast)
        guard let window = try verify.latestWindow(after: after, upTo: now.addingTimeInterval(-grace)) else {
            return nil
        }
        if let lastContact, lastContact >= window { return nil }
        return window
    }

    /// The copies to verify tonight: in path order from after `cursor` (wrapping around), as
    /// many as `budget` bytes allow (at least one).
    static func verifyBatch(_ artifacts: [StoredArtifact], after cursor: String?, budget: Int64) -> [StoredArtifact] {
        let sorted = artifacts.compactMap { a in a.location.map { (artifact: a, path: $0.relativePath) } }
            .sorted { $0.path < $1.path }
        let start = cursor.flatMap { c in sorted.firstIndex { $0.path > c } } ?? 0
        var batch: [StoredArtifact] = []
        var bytes: Int64 = 0
        for offset in 0..<sorted.count {
            let artifact = sorted[(start + offset) % sorted.count].artifact
            if !batch.isEmpty && bytes + artifact.size > budget { break }
            batch.append(artifact)
            bytes += artifact.size
        }
        return batch
    }

    /// The share of the store's file system that is free, 0...1; nil when it cannot be read.
    static func freeShare(of path: String) -> Double? {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0, fs.f_blocks > 0 else { return nil }
        return Double(fs.f_bavail) / Double(fs.f_blocks)
    }
}
