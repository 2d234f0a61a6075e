import BackupCore
import Foundation

/// The manifest of one self-backup of the hub (`MANIFEST.json`, written last in its folder):
/// which catalog it is (epoch), when it was taken, and each file with its size and SHA-256, so
/// that `scm-backup hub restore` takes a snapshot only whole and intact. See `Protocol/hub.md`.
public struct HubSnapshotManifest: Codable, Sendable, Equatable {
    public static let format = "scm-backup-hub-snapshot/1"
    public static let fileName = "MANIFEST.json"

    public struct File: Codable, Sendable, Equatable {
        /// Relative to the snapshot's folder (`catalog.sqlite`, `site.toml`, `keys/…`).
        public var name: String
        public var size: Int64
        public var sha256: String
        public init(name: String, size: Int64, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    public var format: String
    /// The epoch of the catalog it holds.
    public var epoch: String
    /// The coordinator's name (its certificate's) and when it took the snapshot (its clock).
    public var coordinator: String
    public var takenAt: Date
    public var files: [File]

    public init(epoch: String, coordinator: String, takenAt: Date, files: [File]) {
        format = Self.format
        self.epoch = epoch
        self.coordinator = coordinator
        self.takenAt = takenAt
        self.files = files
    }

    /// The folder name of a snapshot taken at `date`: `YYYYMMDDTHHMMSSZ` (UTC), which sorts by time.
    public static func folderName(_ date: Date) -> String { ArtifactLocation.basicStamp(for: date) }

    /// Checks every file of the manifest in `folder`: present, of its size and digest, and no
    /// name leaving the folder; the error names the first file at fault.
    public func check(in folder: String) throws {
        guard format == Self.format else {
            throw BackupError(
                .invalidArgument, "'\(folder)/\(Self.fileName)' is of format '\(format)', not \(Self.format).")
        }
        for file in files {
            let parts = file.name.split(separator: "/", omittingEmptySubsequences: false)
            guard !file.name.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw BackupError(.invalidArgument, "The snapshot in '\(folder)' names '\(file.name)', outside it.")
            }
            let path = folder + "/" + file.name
            guard let st = try FileSystem.linkStatus(path), st.st_mode & S_IFMT == S_IFREG else {
                throw BackupError(.notFound, "The snapshot in '\(folder)' lacks '\(file.name)'.")
            }
            let computed = try Store.digest(path, .sha256)
            guard computed.size == file.size, computed.sha256 == file.sha256 else {
                throw BackupError(
                    .archiveCorrupt,
                    "'\(path)' is \(computed.size) bytes with sha256 \(computed.sha256 ?? "-"); the snapshot's manifest says \(file.size) bytes with sha256 \(file.sha256)."
                )
            }
        }
    }
}
