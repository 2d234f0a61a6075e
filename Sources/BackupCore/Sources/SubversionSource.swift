import Foundation

/// A Subversion repository, copied with `svnadmin hotcopy` (safe against concurrent commits).
///
/// Hotcopy under concurrent commits fails now and then (`E000002`): the partial copy is deleted
/// and the hotcopy tried once more. The revision and UUID are read from the copy itself, so
/// they describe exactly what is archived.
public struct SubversionSource: SourceHandler {
    public var kind: SourceKind { .svn }
    public init() {}

    public func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot {
        try requireRepository(spec.path, spec: spec)
        do {
            try ToolRunner.run(spec.tools.svnadmin, ["hotcopy", spec.path, destination])
        } catch let first as BackupError where first.code == .toolFailed {
            try removeTree(destination)
            try requireRepository(spec.path, spec: spec)  // Deleted meanwhile? Say so, not "hotcopy failed".
            try ToolRunner.run(spec.tools.svnadmin, ["hotcopy", spec.path, destination])
        }
        if spec.verifySnapshot { try check(destination, spec: spec) }
        return try describe(destination, spec: spec)
    }

    /// Revision and UUID of a repository.
    func describe(_ repository: String, spec: SourceSpec) throws -> Snapshot {
        let youngest = try ToolRunner.run(spec.tools.svnlook, ["youngest", repository]).text
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let uuid = try ToolRunner.run(spec.tools.svnlook, ["uuid", repository]).text
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard Int(youngest) != nil else {
            throw BackupError(
                .toolFailed, "'svnlook youngest \(repository)' printed '\(youngest)', not a revision number.")
        }
        return Snapshot(revision: youngest, identity: uuid)
    }

    public func check(_ copy: String, spec: SourceSpec) throws {
        try ToolRunner.run(spec.tools.svnadmin, ["verify", "--quiet", copy])
    }

    public func restore(_ copy: String, to target: String, spec: SourceSpec) throws {
        try FileSystem.rename(copy, to: target)
    }

    private func requireRepository(_ path: String, spec: SourceSpec) throws {
        guard try FileSystem.linkStatus(path) != nil else {
            throw BackupError(
                .sourceInvalid, "Subversion repository '\(path)' of source '\(spec.name)' does not exist.")
        }
        let probe = try ToolRunner.run(spec.tools.svnlook, ["uuid", path], allowFailure: true)
        guard probe.status == 0 else {
            throw BackupError(
                .sourceInvalid,
                "'\(path)' (source '\(spec.name)') is not a Subversion repository: \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
    }
}

/// Removes a folder tree (a partial snapshot); a missing folder is fine.
func removeTree(_ path: String) throws {
    guard try FileSystem.linkStatus(path) != nil else { return }
    do { try FileManager.default.removeItem(atPath: path) } catch {
        throw BackupError(.io, "Cannot remove '\(path)': \(error.localizedDescription)", cause: error)
    }
}
