import CZlib

/// A stream of bytes that the tar reader consumes.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 means end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Where in the underlying file reading has got to, for error messages.
    var fileOffset: Int64 { get }
    /// A name for the stream in error messages, usually the file's path.
    var name: String { get }
}

/// Reads a `.tar` or `.tar.gz` file, inflating gzip (one or more members) when the file
/// starts with the gzip magic, and optionally hashing the file's raw bytes on the way.
///
/// A gzip stream that ends early, fails its CRC or is followed by garbage is an error naming
/// the file and the compressed byte offset.
public final class ArchiveFileSource: ByteSource {
    public let name: String
    private let fd: FileDescriptor
    private var raw: [UInt8]
    private var rawStart = 0
    private var rawEnd = 0
    private var rawEOF = false
    private(set) public var fileOffset: Int64 = 0
    private var digests: DigestAccumulator?
    /// nil until the first read decides; then whether the file is gzip.
    private(set) public var isGzip: Bool?
    private var stream: UnsafeMutablePointer<z_stream>?
    private var memberEnded = false

    /// Opens `path`; `digests` selects which digests of the raw file bytes to compute.
    public init(path: String, digests: DigestSelection? = nil, bufferSize: Int = 256 * 1024) throws {
        name = path
        fd = try FileDescriptor.openForReading(path)
        raw = [UInt8](repeating: 0, count: bufferSize)
        self.digests = digests.map { DigestAccumulator($0) }
    }

    deinit {
        if let stream {
            inflateEnd(stream)
            stream.deallocate()
        }
        fd.closeAfterError()  // Read-only descriptor: a close error cannot lose data.
    }

    /// Reads the rest of the file (checking the gzip trailer) and returns the digests of all
    /// its raw bytes. Call after the tar reader is done.
    public func finish() throws -> ArtifactDigests? {
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        while try scratch.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
        return digests?.finalize()
    }

    private func fillRaw() throws {
        guard !rawEOF else { return }
        if rawStart == rawEnd { rawStart = 0; rawEnd = 0 }
        guard rawEnd < raw.count else { return }
        let n = try raw.withUnsafeMutableBytes {
            try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[rawEnd...]))
        }
        if n == 0 {
            rawEOF = true
        } else {
            raw.withUnsafeBytes { digests?.update(UnsafeRawBufferPointer(rebasing: $0[rawEnd..<(rawEnd + n)])) }
            rawEnd += n
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        if isGzip == nil {
            while rawEnd - rawStart < 2 && !rawEOF { try fillRaw() }
            isGzip = rawEnd - rawStart >= 2 && raw[rawStart] == 0x1f && raw[rawStart + 1] == 0x8b
            if isGzip == true { try startMember() }
        }
        if isGzip == false {
            if rawStart == rawEnd { try fillRaw() }
            let n = min(buffer.count, rawEnd - rawStart)
            guard n > 0 else { return 0 }
            raw.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + rawStart, byteCount: n)
            }
            rawStart += n
            fileOffset += Int64(n)
            return n
        }
        return try inflateInto(buffer)
    }

    private func startMember() throws {
        if stream == nil {
            let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            s.initialize(to: z_stream())
            guard czlib_inflate_init_gzip(s) == Z_OK else {
                s.deallocate()
                throw BackupError(.io, "zlib could not start inflating '\(name)'.")
            }
            stream = s
        } else {
            inflateReset(stream)
        }
        memberEnded = false
    }

    private func inflateInto(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let stream else { return 0 }
        while true {
            if memberEnded {
                // After a member: another member, trailing zero padding, or garbage.
                if rawStart == rawEnd { try fillRaw() }
                if rawStart == rawEnd { return 0 }
                if raw[rawStart] == 0 {
                    while true {
                        while rawStart < rawEnd && raw[rawStart] == 0 { rawStart += 1; fileOffset += 1 }
                        if rawStart < rawEnd {
                            throw BackupError(
                                .archiveCorrupt,
                                "'\(name)' has garbage after its gzip data at compressed byte \(fileOffset).")
                        }
                        try fillRaw()
                        if rawStart == rawEnd { return 0 }
                    }
                }
                while rawEnd - rawStart < 2 && !rawEOF { try fillRaw() }
                guard rawEnd - rawStart >= 2, raw[rawStart] == 0x1f, raw[rawStart + 1] == 0x8b else {
                    throw BackupError(
                        .archiveCorrupt, "'\(name)' has garbage after its gzip data at compressed byte \(fileOffset).")
                }
                try startMember()
            }
            if rawStart == rawEnd { try fillRaw() }
            let available = rawEnd - rawStart
            let (rc, consumed, produced) = raw.withUnsafeMutableBytes { src -> (Int32, Int, Int) in
                stream.pointee.next_in = src.baseAddress!.assumingMemoryBound(to: Bytef.self) + rawStart
                stream.pointee.avail_in = uInt(available)
                stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(buffer.count)
                let rc = inflate(stream, Z_NO_FLUSH)
                return (rc, available - Int(stream.pointee.avail_in), buffer.count - Int(stream.pointee.avail_out))
            }
            rawStart += consumed
            fileOffset += Int64(consumed)
            switch rc {
            case Z_STREAM_END:
                memberEnded = true
                if produced > 0 { return produced }
            case Z_OK:
                if produced > 0 { return produced }
            case Z_BUF_ERROR where available == 0 && rawEOF:
                throw BackupError(
                    .archiveTruncated,
                    "'\(name)' is truncated: its gzip data ends early at compressed byte \(fileOffset).")
            case Z_BUF_ERROR:
                if produced > 0 { return produced }
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "code \(rc)"
                throw BackupError(
                    .archiveCorrupt, "'\(name)' has corrupt gzip data near compressed byte \(fileOffset): \(reason).")
            }
            if available == 0 && rawEOF {
                throw BackupError(
                    .archiveTruncated,
                    "'\(name)' is truncated: its gzip data ends early at compressed byte \(fileOffset).")
            }
        }
    }
}
