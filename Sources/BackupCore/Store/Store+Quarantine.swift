import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A mutant set aside in `<store>/.quarantine/<store-relative path>[.N]` (``Store/quarantine(_:)``).
public struct QuarantineEntry: Codable, Sendable, Equatable {
    /// Relative to the store, starting `.quarantine/`.
    public var path: String
    /// The store-relative path of the artifact it was a copy of (where the repaired copy lives).
    public var artifactPath: String
    public var size: Int64
    /// When it was moved aside (its change time).
    public var quarantinedAt: Date

    public init(path: String, artifactPath: String, size: Int64, quarantinedAt: Date) {
        self.path = path
        self.artifactPath = artifactPath
        self.size = size
        self.quarantinedAt = quarantinedAt
    }
}

extension Store {
    /// Every quarantined mutant, by path.
    public func quarantineEntries() throws -> [QuarantineEntry] {
        let folder = root + "/.quarantine"
        guard try FileSystem.linkStatus(folder) != nil, let walker = FileManager.default.enumerator(atPath: folder)
        else { return [] }
        var entries: [QuarantineEntry] = []
        for case let relative as String in walker
        where !relative.hasSuffix(".dna") && !relative.hasSuffix(Self.receiptSuffix) {
            guard let st = try FileSystem.linkStatus(folder + "/" + relative), st.st_mode & S_IFMT == S_IFREG,
                let artifactPath = Self.artifactPath(ofQuarantined: relative)
            else { continue }
            entries.append(
                QuarantineEntry(
                    path: ".quarantine/" + relative, artifactPath: artifactPath, size: Int64(st.st_size),
                    quarantinedAt: Date(timeIntervalSince1970: TimeInterval(st.st_ctim.tv_sec))))
        }
        return entries.sorted { $0.path < $1.path }
    }

    /// `<sourceFolder>/<stamp>/<file>[.N]` → the artifact's store-relative path; nil outside the layout.
    static func artifactPath(ofQuarantined relative: String) -> String? {
        var components = relative.split(separator: "/").map(String.init)
        guard let last = components.last else { return nil }
        if !last.hasSuffix(".tar.gz"), let dot = last.lastIndex(of: "."), Int(last[last.index(after: dot)...]) != nil {
            components[components.count - 1] = String(last[..<dot])
        }
        guard ArtifactLocation(relativeComponents: components) != nil else { return nil }
        return components.joined(separator: "/")
    }

    /// Removes quarantined `path` (`.quarantine/…`) with its sidecar, within this store's own
    /// floor: only while the artifact it was a copy of is here again and verifies against its
    /// DNA (the repair happened), else it is refused and kept: it may be the only trace left.
    public func removeQuarantined(_ path: String) throws {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard components.first == ".quarantine", components.count > 1, !components.contains(".."),
            !components.contains(""),
            let artifactPath = Self.artifactPath(ofQuarantined: components.dropFirst().joined(separator: "/"))
        else {
            throw BackupError(.refused, "'\(path)' is not a quarantined copy (.quarantine/<store-relative path>).")
        }
        let live = root + "/" + artifactPath
        guard let st = try FileSystem.linkStatus(live),
            verify(
                StoredArtifact(
                    path: live,
                    location: ArtifactLocation(relativeComponents: artifactPath.split(separator: "/").map(String.init)),
                    size: Int64(st.st_size), hasSidecar: try FileSystem.linkStatus(live + ".dna") != nil)
            ).status == .intact
        else {
            throw BackupError(
                .refused,
                "'\(path)' is kept: its artifact '\(artifactPath)' is not here intact again (not repaired), and it may be the only trace left."
            )
        }
        let target = root + "/" + path
        for file in [target + ".dna", target + Self.receiptSuffix, target] where unlink(file) != 0 && errno != ENOENT {
            throw BackupError.posix("delete", path: file, errno: errno)
        }
        try FileSystem.syncDirectory((target as NSString).deletingLastPathComponent)
    }
}
