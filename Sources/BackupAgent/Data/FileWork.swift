import BackupCore
import BackupHTTP
import NIOCore
import NIOPosix

/// The data port's and the transfers' file work (re-hashing a partial, appends, fsyncs, the
/// read-back, reads of a sent artifact) runs on NIO's blocking-I/O thread pool, never on Swift's
/// cooperative pool, whose threads (as many as cores) serve every request and long poll.
enum FileWork {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// Reads up to `count` bytes of `fd` into a new buffer (empty at the end of the file).
    static func read(_ fd: BackupCore.FileDescriptor, count: Int) async throws -> ByteBuffer {
        try await run {
            var buffer = ByteBuffer()
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<count]))
            }
            return buffer
        }
    }
}

/// An artifact being received, handed between the request and the thread pool. Bytes are
/// gathered into writes of ``writeSize`` (a TLS record is 16 KiB; one pool hop per record cost a
/// fifth of the throughput), and `finish` writes what is left first; bytes gathered but not yet
/// written when a body breaks off are simply sent again by the resumption, which starts at the
/// partial's size.
final class ReceivingArtifact: @unchecked Sendable {
    // Safe: one request (or one transfer task) owns it and makes one call at a time, each
    // awaited before the next; the thread pool only ever runs that one call. `moved` is the
    // only field read from elsewhere (a stall watch), and it is locked.
    let incoming: IncomingArtifact
    /// Bytes taken so far (written or gathered), for a stall watch reading from another thread.
    let moved = LockedBox<Int64>(0)
    private var pending = ByteBuffer()
    static let writeSize = 1 << 20

    private init(_ incoming: IncomingArtifact) {
        self.incoming = incoming
    }

    /// `receipt`, checked by the caller, is written beside the artifact when it is published.
    static func open(
        store: Store, location: ArtifactLocation, dna: DNA, discardPartial: Bool, receipt: String? = nil
    ) async throws -> ReceivingArtifact {
        let receiving = try await FileWork.run {
            Exclusive(try IncomingArtifact(store: store, location: location, dna: dna, discardPartial: discardPartial))
        }
        receiving.value.receipt = receipt
        return ReceivingArtifact(receiving.value)
    }

    func append(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        let count = Int64(buffer.readableBytes)
        pending.writeBuffer(&buffer)
        moved.withLock { $0 += count }
        if pending.readableBytes >= Self.writeSize { try await flush() }
    }

    /// Writes the gathered bytes.
    func flush() async throws {
        guard pending.readableBytes > 0 else { return }
        let chunk = pending
        pending = ByteBuffer()
        let target = Exclusive(incoming)
        try await FileWork.run { try chunk.withUnsafeReadableBytes { try target.value.append($0) } }
    }

    func finish(beforePublish: @escaping @Sendable () throws -> Void = {}) async throws -> (
        published: PublishedArtifact, computed: ArtifactDigests
    ) {
        try await flush()
        let target = Exclusive(incoming)
        return try await FileWork.run {
            let (published, computed) = try target.value.finish(beforePublish: beforePublish)
            return (published, computed)
        }
    }

    /// Bytes on disk (the partial's size when opened; what was written since after that).
    var received: Int64 { incoming.received }
    var resumedFrom: Int64 { incoming.resumedFrom }
}

/// A value handed to the thread pool and back by its one owner.
struct Exclusive<T>: @unchecked Sendable {
    // Safe: used by one task at a time, each use awaited before the next (see ReceivingArtifact).
    let value: T
    init(_ value: T) { self.value = value }
}
