#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What archiving a tree produced.
public struct ArchiveResult: Sendable, Equatable {
    /// Size and digests of the compressed bytes written (the artifact's DNA).
    public var compressed: ArtifactDigests
    /// Size and SHA-256 of the tar stream before compression (identifies the content).
    public var tar: ArtifactDigests
    /// Number of members written.
    public var entryCount: Int
}

/// Streams a scanned tree into a compressed tar on a file descriptor in one pass: read a
/// file, append it to the tar stream, compress, hash, write. No temporary copy is made.
///
/// Each file is checked against its scan when read: a file that vanished, was replaced,
/// shrank, grew or changed while read is an error naming it, because a backup of a file in
/// mid-write is not a backup.
public struct TreeArchiver {
    public var bufferSize = 1 << 20

    public init() {}

    /// Writes `plan` as a tar through `compressor` to `output`.
    public func archive<C: ArchiveCompressor>(
        _ plan: ScanPlan, compressor: inout C, to output: FileDescriptor
    ) throws -> ArchiveResult {
        var stream = TarStream(capacity: bufferSize, output: output)
        defer { stream.deallocate() }
        let cancellation = WorkCancellation.current
        for entry in plan.entries {
            try cancellation?.check()
            try stream.append(TarHeaderEncoder.encode(entry.header), compressor: &compressor)
            if entry.header.kind == .file {
                try copyData(of: entry, into: &stream, compressor: &compressor)
                try stream.append(TarHeaderEncoder.padding(for: entry.header.size), compressor: &compressor)
            }
        }
        try stream.append(TarHeaderEncoder.endOfArchive, compressor: &compressor)
        try stream.flush(compressor: &compressor)
        try compressor.finish { try stream.emit($0) }
        return ArchiveResult(
            compressed: stream.outputDigests.finalize(), tar: stream.tarDigests.finalize(),
            entryCount: plan.entries.count)
    }

    private func copyData<C: ArchiveCompressor>(
        of entry: ScannedEntry, into stream: inout TarStream, compressor: inout C
    ) throws {
        let path = String(decoding: entry.sourcePath, as: UTF8.self)
        let fd: FileDescriptor
        do {
            fd = try entry.sourcePath.withCString { p in
                let raw = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard raw >= 0 else { throw BackupError.posix("open", path: path, errno: errno) }
                return FileDescriptor(rawValue: raw, path: path)
            }
        } catch let error as BackupError where error.code == .notFound {
            throw BackupError(.sourceChanged, "'\(path)' vanished during the backup. Run the backup again.")
        }
        try withFileDescriptor(fd) { fd in
            let before = try fd.status()
            guard UInt64(before.st_ino) == entry.inode, UInt64(before.st_dev) == entry.device,
                Int64(before.st_size) == entry.header.size
            else {
                throw changed(path, "was replaced or resized after the scan")
            }
            var left = entry.header.size
            while left > 0 {
                let space = try stream.reserve(compressor: &compressor)
                let want = Int(min(Int64(space.count), left))
                let n = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: space[0..<want]))
                guard n > 0 else { throw changed(path, "shrank while it was read (\(left) bytes missing)") }
                stream.commit(n)
                left -= Int64(n)
            }
            var probe: UInt8 = 0
            guard try withUnsafeMutableBytes(of: &probe, { try fd.read(into: $0) }) == 0 else {
                throw changed(path, "grew while it was read")
            }
            let after = try fd.status()
            let changeTime = Int64(after.st_ctim.tv_sec) * 1_000_000_000 + Int64(after.st_ctim.tv_nsec)
            guard changeTime == entry.changeTime, Int64(after.st_mtim.tv_sec) == entry.header.modificationTime else {
                throw changed(path, "changed while it was read")
            }
        }
    }

    private func changed(_ path: String, _ what: String) -> BackupError {
        BackupError(.sourceChanged, "'\(path)' \(what). Run the backup again when it is quiet.")
    }
}

/// The tar byte stream: buffers tar bytes, hashes them, compresses, hashes the output and
/// writes it.
struct TarStream {
    private let buffer: UnsafeMutableRawBufferPointer
    private var filled = 0
    let output: FileDescriptor
    var tarDigests = DigestAccumulator(.sha256)
    var outputDigests = DigestAccumulator(.both)

    init(capacity: Int, output: FileDescriptor) {
        buffer = .allocate(byteCount: capacity, alignment: 16)
        self.output = output
    }

    func deallocate() { buffer.deallocate() }

    /// Free space at the end of the buffer, flushing first if it is full.
    mutating func reserve<C: ArchiveCompressor>(compressor: inout C) throws -> UnsafeMutableRawBufferPointer {
        if filled == buffer.count { try flush(compressor: &compressor) }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])
    }

    mutating func commit(_ count: Int) { filled += count }

    mutating func append<C: ArchiveCompressor>(_ bytes: [UInt8], compressor: inout C) throws {
        var offset = 0
        while offset < bytes.count {
            let space = try reserve(compressor: &compressor)
            let n = min(space.count, bytes.count - offset)
            bytes.withUnsafeBytes { space.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            commit(n)
            offset += n
        }
    }

    mutating func flush<C: ArchiveCompressor>(compressor: inout C) throws {
        guard filled > 0 else { return }
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
        tarDigests.update(chunk)
        try compressor.compress(chunk) { try self.emit($0) }
        filled = 0
    }

    mutating func emit(_ bytes: UnsafeRawBufferPointer) throws {
        outputDigests.update(bytes)
        try output.write(bytes)
    }
}
