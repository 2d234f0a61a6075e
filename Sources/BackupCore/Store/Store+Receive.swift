import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An artifact arriving from another node (no networking here: the bytes come from the caller).
///
/// It is written to `<final>.partial` in its stamp folder and hashed while written. An
/// interrupted transfer resumes from the bytes already there: they are read back and hashed
/// again, so the digest state is that of what is really on disk. ``finish()`` fsyncs, compares
/// size and digest with the DNA the sender sent (and the coordinator's ticket vouched for),
/// writes the sidecar, renames the partial to its final name, fsyncs the folder and moves
/// `last` — or, on any mismatch, deletes the partial and reports a mutant transfer: nothing
/// appears under a final name.
public final class IncomingArtifact {
    public let store: Store
    public let location: ArtifactLocation
    public let dna: DNA
    /// The coordinator's receipt, written beside the artifact with its sidecar when set (the
    /// caller verified it: ``Store/writeReceipt(_:beside:)``).
    public var receipt: String?
    public var finalPath: String { store.path(of: location) }
    public var partialPath: String { finalPath + ".partial" }
    /// Bytes in the partial file.
    public private(set) var received: Int64 = 0
    /// Bytes that were already there when this transfer (re)started.
    public let resumedFrom: Int64
    private var digests: DigestAccumulator
    private let fd: FileDescriptor
    private var closed = false

    /// Opens the partial of `location` for the artifact `dna` describes, resuming what is there
    /// (or starting over with `discardPartial`).
    /// Refused when the artifact is already present under its final name, when `dna` does not
    /// describe this file, or has neither SHA-256 nor MD5 to check against.
    public init(store: Store, location: ArtifactLocation, dna: DNA, discardPartial: Bool = false) throws {
        self.store = store
        self.location = location
        self.dna = dna
        guard dna.artifact.isEmpty || dna.artifact == location.fileName else {
            throw BackupError(
                .refused, "The DNA sent for '\(location.relativePath)' describes '\(dna.artifact)', another file.")
        }
        guard dna.sha256 != nil || dna.md5 != nil else {
            throw BackupError(
                .refused, "The DNA sent for '\(location.relativePath)' has no digest to check the bytes against.")
        }
        let finalPath = store.path(of: location)
        guard try FileSystem.linkStatus(finalPath) == nil else {
            throw BackupError(.refused, "'\(finalPath)' already exists; a transfer never overwrites an artifact.")
        }
        let folder = (finalPath as NSString).deletingLastPathComponent
        try FileSystem.makeDirectories(folder)
        let partial = finalPath + ".partial"
        var selection: DigestSelection = dna.sha256 != nil ? .sha256 : .md5
        if dna.sha256 != nil && dna.md5 != nil { selection = .both }
        var accumulator = DigestAccumulator(selection)
        let fd = try FileDescriptor.open(partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode: 0o600)
        do {
            // Re-hash what an earlier attempt left; a partial longer than the artifact starts over.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try fd.read(into: buffer)
                if n == 0 { break }
                accumulator.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            if accumulator.count > dna.size || discardPartial {
                try fd.truncate(to: 0)
                _ = try fd.seek(to: 0)
                accumulator = DigestAccumulator(selection)
            }
        } catch {
            fd.closeAfterError()
            throw error
        }
        self.fd = fd
        self.digests = accumulator
        received = accumulator.count
        resumedFrom = accumulator.count
    }

    deinit {
        if !closed { fd.closeAfterError() }
    }

    /// Appends bytes; refused beyond the size the DNA gives (a body longer than announced).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard received + Int64(bytes.count) <= dna.size else {
            throw BackupError(
                .invalidArgument,
                "'\(location.relativePath)' is \(dna.size) bytes, but more arrived (\(received + Int64(bytes.count)) bytes): the transfer is refused."
            )
        }
        do { try fd.write(bytes) } catch let error as BackupError where error.code == .diskFull {
            throw BackupError(
                .diskFull,
                "No space left on the receiving store for '\(partialPath)' after \(received) of \(dna.size) bytes: \(error.message)",
                cause: error)
        }
        digests.update(bytes)
        received += Int64(bytes.count)
    }

    /// Checks and publishes the artifact; returns it with the digests computed here.
    /// `beforePublish` runs once the bytes are known good and before the sidecar and the final
    /// name appear (a receiver records its ticket as spent there); if it throws, nothing is
    /// published and the verified partial is kept.
    public func finish(beforePublish: () throws -> Void = {}) throws -> (
        published: PublishedArtifact, computed: ArtifactDigests
    ) {
        guard received == dna.size else {
            throw BackupError(
                .archiveTruncated,
                "'\(location.relativePath)' ended after \(received) of \(dna.size) bytes; the partial is kept to resume."
            )
        }
        try fd.sync()
        closed = true
        try fd.close()
        let computed = digests.finalize()
        var reasons: [String] = []
        if let want = dna.sha256, let got = computed.sha256, want != got {
            reasons.append("sha256 \(got) instead of \(want)")
        }
        if dna.sha256 == nil, let want = dna.md5, let got = computed.md5, want != got {
            reasons.append("md5 \(got) instead of \(want)")
        }
        guard reasons.isEmpty else {
            // Not kept: a mutant transfer is received again from a good copy, never published.
            unlink(partialPath)
            throw BackupError(
                .archiveCorrupt,
                "Mutant transfer of '\(location.relativePath)': \(reasons.joined(separator: "; ")); nothing was published."
            )
        }
        try beforePublish()
        let folder = (finalPath as NSString).deletingLastPathComponent
        try FileSystem.writeAtomically(try dna.encoded(), to: finalPath + ".dna")
        do {
            if let receipt { try Store.writeReceipt(receipt, beside: finalPath) }
            try FileSystem.rename(partialPath, to: finalPath)
        } catch {
            // Clean-up on a failing path; the error is reported.
            unlink(finalPath + ".dna")
            unlink(finalPath + Store.receiptSuffix)
            throw error
        }
        try FileSystem.syncDirectory(folder)
        let sourceFolder = "\(store.root)/\(location.sourceFolder)"
        var warnings: [String] = []
        // `last` follows the newest stamp: an older artifact arriving late does not move it back.
        let newest = try store.scan([sourceFolder]).artifacts.compactMap(\.location?.stamp).max()
        if newest == location.stamp, let warning = try store.updateLastLink(sourceFolder, to: location.stamp) {
            warnings.append(warning)
        }
        return (PublishedArtifact(path: finalPath, location: location, dna: dna, warnings: warnings), computed)
    }
}

/// What a store holds under an artifact's final name.
public enum HeldArtifact: Equatable, Sendable {
    /// Nothing.
    case absent
    /// The file, but no sidecar, or one that does not decode: its digest is unknown.
    case unknownDigest
    /// The file with its sidecar's digest (SHA-256, else MD5 for a legacy sidecar).
    case digest(String)
}

extension Store {
    /// What the store holds at `location`. A sidecar that exists but cannot be read (an I/O
    /// error, not bad content) is thrown, naming the file.
    public func held(_ location: ArtifactLocation) throws -> HeldArtifact {
        let path = self.path(of: location)
        guard try FileSystem.linkStatus(path) != nil else { return .absent }
        guard try FileSystem.linkStatus(path + ".dna") != nil else { return .unknownDigest }
        let bytes = try FileSystem.readSmallFile(path + ".dna")
        guard let dna = try? DNA.decode(bytes, path: path + ".dna"),  // Bad content: the digest is unknown.
            let digest = dna.sha256 ?? dna.md5
        else { return .unknownDigest }
        return .digest(digest)
    }

    /// The absolute path of a store-relative artifact path, refused unless it is a clean path
    /// in the layout (no `..`, `.`, empty or absolute components).
    public func location(ofRelative relative: String) throws -> ArtifactLocation {
        try Self.location(ofRelative: relative)
    }

    /// ``location(ofRelative:)`` without a store: for a coordinator checking what it will order.
    public static func location(ofRelative relative: String) throws -> ArtifactLocation {
        let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !relative.hasPrefix("/"), !components.contains(".."), !components.contains("."),
            !components.contains(""), let location = ArtifactLocation(relativeComponents: components),
            (try? StoreName.validate(location.origin, what: "node")) != nil,  // Invalid: refused below.
            (try? StoreName.validate(location.source, what: "source")) != nil,  // Invalid: refused below.
            (try? StoreName.validate(location.kind, what: "kind")) != nil  // Invalid: refused below.
        else {
            throw BackupError(
                .refused,
                "'\(relative)' is not a store-relative artifact path (<origin>/<kind>/<source>/YYYY/MM/DD/HHMMSS/<file>.tar.gz)."
            )
        }
        return location
    }

    /// Moves a mutant artifact and its sidecar to `<store>/.quarantine/<relative path>`, never
    /// deleting it; returns the quarantine path. A copy already quarantined under that name is
    /// kept and the new one gets a numbered suffix.
    /// Quarantines the file at `location` with its sidecar, when there is one, so that a copy
    /// the coordinator authorised may be received in its place; returns where it went.
    public func setAside(_ location: ArtifactLocation) throws -> String? {
        let path = self.path(of: location)
        guard let st = try FileSystem.linkStatus(path) else { return nil }
        let present = StoredArtifact(
            path: path, location: location, size: Int64(st.st_size),
            hasSidecar: try FileSystem.linkStatus(path + ".dna") != nil)
        return try quarantine(present)
    }

    public func quarantine(_ artifact: StoredArtifact) throws -> String {
        guard let location = artifact.location else {
            throw BackupError(.refused, "'\(artifact.path)' is outside the store layout; it is not quarantined.")
        }
        let folder = "\(root)/.quarantine/\(location.sourceFolder)/\(location.stamp)"
        try FileSystem.makeDirectories(folder)
        var target = folder + "/" + location.fileName
        var n = 1
        while try FileSystem.linkStatus(target) != nil {
            target = folder + "/" + location.fileName + ".\(n)"
            n += 1
        }
        if artifact.hasSidecar { try FileSystem.rename(artifact.sidecarPath, to: target + ".dna") }
        try Self.moveReceipt(beside: artifact.path, to: target)
        try FileSystem.rename(artifact.path, to: target)
        try FileSystem.syncDirectory(folder)
        try FileSystem.syncDirectory((artifact.path as NSString).deletingLastPathComponent)
        return target
    }
}
