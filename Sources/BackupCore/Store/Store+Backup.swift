import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An artifact written to a store.
public struct PublishedArtifact: Sendable {
    public var path: String
    public var location: ArtifactLocation
    public var dna: DNA
    /// Things the operator should know that did not stop the backup.
    public var warnings: [String]
}

extension Store {
    /// Backs up the folder at `sourcePath` as source `name` of `node`.
    ///
    /// The artifact is written as `<source>.tar.gz.partial`, fsynced, read back through (every
    /// member, the gzip CRC and SHA-256 against what was written), its sidecar written
    /// atomically, and only then renamed to its final name and `last` moved to it. On any
    /// error the partial is removed and no final name appears. The revision is the first 12
    /// hex digits of the SHA-256 of the tar stream, so an unchanged folder keeps its revision.
    public func backupFolder(
        _ sourcePath: String, node: String, name: String, now: Date = Date(),
        compressor makeCompressor: () throws -> some ArchiveCompressor = { try GzipCompressor() }
    ) throws -> PublishedArtifact {
        try StoreName.validate(node, what: "node name")
        try StoreName.validate(name, what: "source name")
        let plan = try TreeScanner.scan(Store.normalise(sourcePath), archiveRoot: name)
        var compressor = try makeCompressor()
        let kind = SourceKind.folder.rawValue
        return try publish(origin: node, kind: kind, source: name, now: now) { fd in
            let result = try TreeArchiver().archive(plan, compressor: &compressor, to: fd)
            return (result, plan.skipped.map { "'\($0)' is a socket; sockets are not archived." })
        }
    }

    /// Writes an artifact through `produce` into a fresh stamp folder and publishes it.
    func publish(
        origin: String, kind: String, source: String, now: Date,
        produce: (FileDescriptor) throws -> (ArchiveResult, [String])
    ) throws -> PublishedArtifact {
        let sourceFolder = "\(root)/\(origin)/\(kind)/\(source)"
        let (stamp, folder) = try makeStampFolder(sourceFolder, now: now)
        let partial = "\(folder)/\(source).tar.gz.partial"
        var finalPaths: [String] = []
        do {
            let fd = try FileDescriptor.create(partial)
            let (result, warnings) = try withFileDescriptor(fd) { fd in
                let r = try produce(fd)
                try fd.sync()
                return r
            }
            let check = try ArchiveInspector.check(partial, digests: .sha256)
            guard check.fileDigests?.sha256 == result.compressed.sha256,
                check.fileDigests?.size == result.compressed.size
            else {
                throw BackupError(
                    .io, "'\(partial)' does not read back as written: the disk or file system is corrupting data.")
            }
            let revision = String(result.tar.sha256!.prefix(12))
            let fileName = "\(source)-\(revision).tar.gz"
            let location = ArtifactLocation(
                origin: origin, kind: kind, source: source, stamp: stamp, fileName: fileName)
            let dna = DNA(
                artifact: fileName, digests: result.compressed, origin: origin, kind: kind, source: source,
                revision: revision, created: now, tar: result.tar, entries: result.entryCount)
            let artifactPath = path(of: location)
            finalPaths = [artifactPath + ".dna"]
            try FileSystem.writeAtomically(try dna.encoded(), to: artifactPath + ".dna")
            try FileSystem.rename(partial, to: artifactPath)
            finalPaths = []
            try FileSystem.syncDirectory(folder)
            var allWarnings = warnings
            if let warning = try updateLastLink(sourceFolder, to: stamp) { allWarnings.append(warning) }
            return PublishedArtifact(path: artifactPath, location: location, dna: dna, warnings: allWarnings)
        } catch {
            // Clean-up on a path that already fails: the original error is the one to report.
            unlink(partial)
            for path in finalPaths { unlink(path) }
            // Remove the stamp folder and its emptied date folders; rmdir leaves non-empty ones.
            var empty = folder
            for _ in 0..<4 where rmdir(empty) == 0 { empty = (empty as NSString).deletingLastPathComponent }
            throw error
        }
    }

    /// Creates the stamp folder for `now`, or the next free second if a backup of the same
    /// source already took that one (the DNA keeps the exact time).
    private func makeStampFolder(_ sourceFolder: String, now: Date) throws -> (String, String) {
        try FileSystem.makeDirectories(sourceFolder)
        for offset in 0..<120 {
            let stamp = ArtifactLocation.stamp(for: now.addingTimeInterval(TimeInterval(offset)))
            let folder = sourceFolder + "/" + stamp
            try FileSystem.makeDirectories((folder as NSString).deletingLastPathComponent)
            if mkdir(folder, 0o700) == 0 {
                guard chmod(folder, 0o700) == 0 else {
                    throw BackupError.posix("set the mode of", path: folder, errno: errno)
                }
                return (stamp, folder)
            }
            guard errno == EEXIST else { throw BackupError.posix("create folder", path: folder, errno: errno) }
        }
        throw BackupError(.io, "No free stamp folder under '\(sourceFolder)' within two minutes of \(now).")
    }
}
