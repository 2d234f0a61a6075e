import CZlib

/// Turns a byte stream into compressed bytes, handing output to a sink as it goes.
///
/// The archive writer depends only on this interface, so a chunked parallel compressor can
/// replace the single-stream gzip one without touching the tar code.
public protocol ArchiveCompressor {
    /// Compresses `input`; may hand any amount of output (or none) to `sink`.
    mutating func compress(
        _ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Flushes the remaining output and the stream trailer to `sink`.
    mutating func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// A single gzip member through the system zlib: zero mtime, no file name, so that the same
/// input always gives the same bytes.
public final class GzipCompressor: ArchiveCompressor {
    /// zlib keeps a pointer to its stream, so the stream lives at a fixed address.
    private let stream: UnsafeMutablePointer<z_stream>
    private var output: [UInt8]
    private var finished = false

    /// Makes a compressor at `level` (1 fastest … 9 smallest). The default is 6, as gzip's.
    public init(level: Int32 = 6, outputBufferSize: Int = 256 * 1024) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = [UInt8](repeating: 0, count: outputBufferSize)
        let rc = czlib_deflate_init_gzip(stream, level)
        guard rc == Z_OK else {
            stream.deallocate()
            throw BackupError(.invalidArgument, "zlib refused compression level \(level) (code \(rc)).")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    public func compress(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        stream.pointee.next_in = UnsafeMutablePointer(
            mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        try run(flush: Z_NO_FLUSH, sink: sink)
    }

    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { return }
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try run(flush: Z_FINISH, sink: sink)
        finished = true
    }

    private func run(flush: Int32, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let capacity = output.count
        try output.withUnsafeMutableBytes { out in
            let base = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            while true {
                stream.pointee.next_out = base
                stream.pointee.avail_out = uInt(capacity)
                let rc = deflate(stream, flush)
                guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                    throw BackupError(.io, "zlib deflate failed with code \(rc).")
                }
                let produced = capacity - Int(stream.pointee.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(rebasing: out[0..<produced])) }
                if flush == Z_FINISH {
                    if rc == Z_STREAM_END { return }
                } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                    return
                }
            }
        }
    }
}
