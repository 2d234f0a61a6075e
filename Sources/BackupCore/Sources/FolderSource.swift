import Foundation

/// A plain folder (Apache config, `users.conf`, `authz.conf`). It is archived as it is: no
/// snapshot tool exists, so a file that changes while read fails the backup (see
/// `TreeArchiver`). Its revision is the content digest.
public struct FolderSource: SourceHandler {
    public var kind: SourceKind { .folder }
    public init() {}

    public func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot {
        // Folders are archived in place; `Store.backup` never asks for a staged copy.
        throw BackupError(.invalidArgument, "Folder sources are archived in place, not snapshotted.")
    }

    public func check(_ copy: String, spec: SourceSpec) throws {
        guard try FileSystem.linkStatus(copy) != nil else {
            throw BackupError(
                .archiveCorrupt, "The artifact of '\(spec.name)' does not hold the folder '\(spec.name)'.")
        }
    }

    public func restore(_ copy: String, to target: String, spec: SourceSpec) throws {
        try FileSystem.rename(copy, to: target)
    }
}
