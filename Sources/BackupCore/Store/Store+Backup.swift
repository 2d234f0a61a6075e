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
    public func backupFolder(_ sourcePath: String, node: String, name: String, now: Date = Date()) throws
        -> PublishedArtifact
    {
        try backup(SourceSpec(kind: .folder, name: name, path: sourcePath), node: node, now: now)
    }

    /// Backs up one source of `node`.
    ///
    /// A folder is archived in place; every other kind is first snapshotted by its handler
    /// into `<store>/.staging/` (svn hotcopy, git bundle, trac hotcopy, SQLite online backup),
    /// which is removed afterwards whatever happens. The artifact is written as
    /// `<source>.tar.gz.partial`, fsynced, read back through (every member, the gzip CRC and
    /// SHA-256 against what was written), its sidecar written atomically, and only then renamed
    /// to its final name and `last` moved to it. On any error no final name appears. The
    /// revision is the source's own (svn revision, git refs id) or else the first 12 hex digits
    /// of the tar stream's SHA-256. A regression against the previous artifact is flagged.
    public func backup(
        _ spec: SourceSpec, node: String, now: Date = Date(),
        compressor makeCompressor: () throws -> some ArchiveCompressor = { try GzipCompressor() }
    ) throws -> PublishedArtifact {
        try StoreName.validate(node, what: "node name")
        try StoreName.validate(spec.name, what: "source name")
        try spec.preBackup?.run()
        return try withSnapshot(spec, node: node) { tree, snapshot in
            try publishTree(
                tree, spec: spec, snapshot: snapshot, node: node, now: now, compressor: try makeCompressor())
        }
    }

    /// Backs up a Trac environment and its Subversion repository as one consistent pair: both
    /// are copied while `svnadmin freeze` holds the repository's write lock, so the Trac
    /// database never refers to revisions the repository copy lacks. Each DNA names the other.
    public func backupPair(
        svn: SourceSpec, trac: SourceSpec, node: String, now: Date = Date()
    ) throws -> (svn: PublishedArtifact, trac: PublishedArtifact) {
        guard svn.kind == .svn, trac.kind == .trac else {
            throw BackupError(.invalidArgument, "A pair is an svn repository and a trac environment.")
        }
        try StoreName.validate(node, what: "node name")
        try StoreName.validate(svn.name, what: "source name")
        try StoreName.validate(trac.name, what: "source name")
        guard try FileSystem.linkStatus(svn.path) != nil else {
            throw BackupError(
                .sourceInvalid, "Subversion repository '\(svn.path)' of source '\(svn.name)' does not exist.")
        }
        try trac.preBackup?.run()
        let svnStaging = try makeStaging(node: node, kind: .svn, name: svn.name)
        let tracStaging = try makeStaging(node: node, kind: .trac, name: trac.name)
        defer {
            // Scratch folders; a leftover is removed by the next backup of the same source.
            _ = try? removeTree(svnStaging)
            _ = try? removeTree(tracStaging)
        }
        let svnCopy = svnStaging + "/" + svn.name
        let tracCopy = tracStaging + "/" + trac.name
        let (svnSnapshot, tracSnapshot) = try ToolRunner.whileRunning(
            svn.tools.svnadmin, ["freeze", svn.path, "--", "sh", "-c", "echo frozen; exec cat"], readyLine: "frozen"
        ) {
            (try SubversionSource().snapshot(svn, to: svnCopy), try TracSource().snapshot(trac, to: tracCopy))
        }
        let svnName = "\(svn.name)-\(svnSnapshot.revision ?? "").tar.gz"
        let tracArtifact = try publishTree(
            tracCopy, spec: trac, snapshot: tracSnapshot, node: node, now: now, compressor: try GzipCompressor(),
            pairedWith: svnName)
        let svnArtifact = try publishTree(
            svnCopy, spec: svn, snapshot: svnSnapshot, node: node, now: now, compressor: try GzipCompressor(),
            pairedWith: tracArtifact.location.fileName)
        return (svnArtifact, tracArtifact)
    }

    /// Runs `body` with the tree to archive: the folder itself, or a fresh snapshot in staging.
    func withSnapshot<T>(
        _ spec: SourceSpec, node: String, _ body: (String, Snapshot) throws -> T
    ) throws -> T {
        if spec.kind == .folder { return try body(Store.normalise(spec.path), Snapshot(revision: nil, identity: nil)) }
        let staging = try makeStaging(node: node, kind: spec.kind, name: spec.name)
        defer { _ = try? removeTree(staging) }  // Scratch; a leftover is removed by the next backup of the source.
        let destination = staging + "/" + spec.name
        let snapshot = try spec.kind.handler.snapshot(spec, to: destination)
        return try body(destination, snapshot)
    }

    /// A fresh staging folder `<store>/.staging/<node>-<kind>-<name>-<random>`, after removing what a
    /// crashed earlier backup of the same source left there.
    func makeStaging(node: String, kind: SourceKind, name: String) throws -> String {
        let base = root + "/.staging"
        try FileSystem.makeDirectories(base)
        for leftover in try FileSystem.entries(of: base) where leftover.hasPrefix("\(node)-\(kind.rawValue)-\(name)-") {
            try removeTree(base + "/" + leftover)
        }
        let folder = base + "/\(node)-\(kind.rawValue)-\(name)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileSystem.makeDirectories(folder)
        return folder
    }

    /// Archives `tree` and publishes it as an artifact of `spec` on `node`.
    func publishTree(
        _ tree: String, spec: SourceSpec, snapshot: Snapshot, node: String, now: Date,
        compressor: some ArchiveCompressor, pairedWith: String? = nil
    ) throws -> PublishedArtifact {
        let plan = try TreeScanner.scan(tree, archiveRoot: spec.name)
        var compressor = compressor
        let previous = try newestDNA(origin: node, kind: spec.kind.rawValue, source: spec.name)
        return try publish(
            origin: node, kind: spec.kind.rawValue, source: spec.name, now: now, snapshot: snapshot, previous: previous,
            pairedWith: pairedWith
        ) { fd in
            let result = try TreeArchiver().archive(plan, compressor: &compressor, to: fd)
            return (result, plan.skipped.map { "'\($0)' is a socket; sockets are not archived." })
        }
    }

    /// The DNA of the newest artifact of a source that has a readable sidecar, if any.
    func newestDNA(origin: String, kind: String, source: String) throws -> DNA? {
        let folder = "\(root)/\(origin)/\(kind)/\(source)"
        guard try FileSystem.linkStatus(folder) != nil else { return nil }
        for artifact in try scan([folder]).artifacts.reversed() where artifact.hasSidecar {
            if let dna = try? DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
            {
                // An unreadable sidecar is skipped: verify reports it; the guard compares with the last good one.
                return dna
            }
        }
        return nil
    }

    /// Writes an artifact through `produce` into a fresh stamp folder and publishes it.
    func publish(
        origin: String, kind: String, source: String, now: Date, snapshot: Snapshot, previous: DNA?,
        pairedWith: String? = nil, produce: (FileDescriptor) throws -> (ArchiveResult, [String])
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
            let revision = snapshot.revision ?? String(result.tar.sha256!.prefix(12))
            let fileName = "\(source)-\(revision).tar.gz"
            let location = ArtifactLocation(
                origin: origin, kind: kind, source: source, stamp: stamp, fileName: fileName)
            var dna = DNA(
                artifact: fileName, digests: result.compressed, origin: origin, kind: kind, source: source,
                revision: revision, created: now, tar: result.tar, entries: result.entryCount)
            dna.identity = snapshot.identity
            dna.pairedWith = pairedWith
            let regressions = RegressionGuard.regressions(of: dna, after: previous)
            dna.regressions = regressions.isEmpty ? nil : regressions
            let artifactPath = path(of: location)
            finalPaths = [artifactPath + ".dna"]
            try FileSystem.writeAtomically(try dna.encoded(), to: artifactPath + ".dna")
            try FileSystem.rename(partial, to: artifactPath)
            finalPaths = []
            try FileSystem.syncDirectory(folder)
            var allWarnings =
                warnings + regressions.map { "regression: \($0); this artifact is kept but never counts for retention" }
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

extension Store {
    /// Removes what crashed backups of `node` left behind: its staging folders
    /// (`.staging/<node>-…`) and its partial archives (`<node>/<kind>/<source>/<stamp>/<source>.tar.gz.partial`,
    /// with the stamp folder when nothing else is in it). A received copy's partial
    /// (`<source>-<revision>.tar.gz.partial`) is not a backup's and is kept for resumption.
    /// An agent calls this at start, when no backup of its own can be running. Returns the
    /// paths removed.
    public func removeCrashedBackupWork(node: String) throws -> [String] {
        var removed: [String] = []
        let staging = root + "/.staging"
        if try FileSystem.linkStatus(staging) != nil {
            for entry in try FileSystem.entries(of: staging) where entry.hasPrefix("\(node)-") {
                try removeTree(staging + "/" + entry)
                removed.append(staging + "/" + entry)
            }
        }
        let origin = root + "/" + node
        guard try FileSystem.linkStatus(origin) != nil else { return removed }
        let files = FileManager.default.enumerator(atPath: origin)?.compactMap { $0 as? String } ?? []
        for relative in files where relative.hasSuffix(".tar.gz.partial") {
            let parts = relative.split(separator: "/").map(String.init)
            // kind/source/YYYY/MM/DD/HHMMSS/file
            guard parts.count == 7, parts[6] == "\(parts[1]).tar.gz.partial" else { continue }
            let path = origin + "/" + relative
            guard unlink(path) == 0 || errno == ENOENT else {
                throw BackupError(
                    .io, "Cannot remove the crashed backup's '\(path)': \(String(cString: strerror(errno))).")
            }
            removed.append(path)
            // The stamp folder goes with it when nothing else is in it; rmdir refuses otherwise, as wanted.
            _ = rmdir((path as NSString).deletingLastPathComponent)
        }
        return removed
    }
}

extension Store {
    /// Removes the partials of received copies that no transfer can resume any more: the
    /// ticket ledger no longer remembers a task naming the artifact (ten minutes after its
    /// last ticket expired) and nothing was written to the partial for `minimumAge` seconds. A
    /// retried transfer gets a fresh ticket and is remembered again, so its partial stays; an
    /// abandoned one stops holding the space another transfer needs. A backup's partial
    /// (``removeCrashedBackupWork(node:)``) is not touched. Returns the paths removed.
    public func removeAbandonedPartials(now: Date, minimumAge: TimeInterval = TicketLedger.keepAfterExpiry) throws
        -> [String]
    {
        let inUse = try readLedger().pathsInUse
        var removed: [String] = []
        for path in try scan().partials where path.hasSuffix(".tar.gz.partial") {
            let relative = String(path.dropFirst(root.count + 1).dropLast(".partial".count))
            let parts = relative.split(separator: "/").map(String.init)
            // origin/kind/source/YYYY/MM/DD/HHMMSS/file: a backup's is <source>.tar.gz.partial.
            if parts.count == 8, parts[7] == "\(parts[2]).tar.gz" { continue }
            guard !inUse.contains(relative), let st = try FileSystem.linkStatus(path) else { continue }
            let written = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
            guard now.timeIntervalSince(written) >= minimumAge else { continue }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw BackupError(
                    .io, "Cannot remove the abandoned partial '\(path)': \(String(cString: strerror(errno))).")
            }
            removed.append(path)
        }
        return removed
    }
}
