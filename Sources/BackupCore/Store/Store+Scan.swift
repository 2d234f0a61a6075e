import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An artifact file found in a store, with what is known about it without reading it.
public struct StoredArtifact: Sendable {
    /// Absolute path of the `.tar.gz`.
    public var path: String
    /// Its place in the layout, nil for a file outside it.
    public var location: ArtifactLocation?
    /// Size on disk.
    public var size: Int64
    /// Whether a `.dna` sidecar exists beside it.
    public var hasSidecar: Bool
    public var sidecarPath: String { path + ".dna" }

    public init(path: String, location: ArtifactLocation?, size: Int64, hasSidecar: Bool) {
        self.path = path
        self.location = location
        self.size = size
        self.hasSidecar = hasSidecar
    }
}

/// What a walk over a store found.
public struct StoreScan: Sendable {
    public var artifacts: [StoredArtifact] = []
    /// Sidecars whose artifact is missing (a crash between writing the two, or a lost file).
    public var orphanSidecars: [String] = []
    /// `last` entries that are folders: copies that collapsed a link (see `repairLastLinks`).
    public var collapsedLastLinks: [String] = []
    /// In-progress or abandoned `.partial` files; never artifacts.
    public var partials: [String] = []
}

extension Store {
    /// Finds artifacts under `paths` (files or folders; the whole store when empty), without
    /// following symlinks, ignoring `.partial` files and the `.quarantine` folder.
    public func scan(_ paths: [String] = []) throws -> StoreScan {
        var result = StoreScan()
        let roots = paths.isEmpty ? [root] : paths.map(Store.normalise)
        for start in roots {
            guard let st = try FileSystem.linkStatus(start) else {
                throw BackupError(.notFound, "'\(start)' does not exist.")
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                try walk(start, into: &result)
            } else {
                var file = start
                if file.hasSuffix(".tar.gz.dna") { file = String(file.dropLast(4)) }
                guard file.hasSuffix(".tar.gz") else {
                    throw BackupError(
                        .invalidArgument, "'\(start)' is neither a folder nor a .tar.gz artifact or its .dna.")
                }
                guard let fst = try FileSystem.linkStatus(file) else {
                    result.orphanSidecars.append(start)
                    continue
                }
                result.artifacts.append(try artifact(at: file, size: Int64(fst.st_size)))
            }
        }
        result.artifacts.sort { $0.path < $1.path }
        return result
    }

    private func walk(_ folder: String, into result: inout StoreScan) throws {
        let names = try FileSystem.entries(of: folder)
        let present = Set(names)
        for name in names {
            let path = folder + "/" + name
            guard let st = try FileSystem.linkStatus(path) else { continue }  // Removed meanwhile.
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR {
                // Store-level folders such as .staging and .quarantine hold no published artifacts.
                if name.hasPrefix(".") && folder == root { continue }
                if name == "last" {
                    result.collapsedLastLinks.append(path)
                    continue
                }
                try walk(path, into: &result)
            } else if type == S_IFREG {
                if name.hasSuffix(".partial") {
                    result.partials.append(path)
                } else if name.hasSuffix(".tar.gz") {
                    result.artifacts.append(
                        try artifact(at: path, size: Int64(st.st_size), hasSidecar: present.contains(name + ".dna")))
                } else if name.hasSuffix(".tar.gz.dna"), !present.contains(String(name.dropLast(4))) {
                    result.orphanSidecars.append(path)
                }
            }
        }
    }

    private func artifact(at path: String, size: Int64, hasSidecar: Bool? = nil) throws -> StoredArtifact {
        var location: ArtifactLocation?
        if path.hasPrefix(root + "/") {
            let relative = String(path.dropFirst(root.count + 1)).split(separator: "/").map(String.init)
            location = ArtifactLocation(relativeComponents: relative)
        }
        let sidecar = try hasSidecar ?? (FileSystem.linkStatus(path + ".dna") != nil)
        return StoredArtifact(path: path, location: location, size: size, hasSidecar: sidecar)
    }
}
