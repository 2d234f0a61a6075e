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

/// An artifact being received, handed between the request and the thread pool.
struct ReceivingArtifact: @unchecked Sendable {
    // Safe: one request (or one transfer task) owns it and makes one call at a time, each
    // awaited before the next; the thread pool only ever runs that one call.
    let incoming: IncomingArtifact
    /// Bytes appended so far, for a stall watch reading from another thread.
    let moved = LockedBox<Int64>(0)

    static func open(store: Store, location: ArtifactLocation, dna: DNA, discardPartial: Bool) async throws
        -> ReceivingArtifact
    {
        try await FileWork.run {
            ReceivingArtifact(
                incoming: try IncomingArtifact(
                    store: store, location: location, dna: dna, discardPartial: discardPartial))
        }
    }

    func append(_ buffer: ByteBuffer) async throws {
        try await FileWork.run { try buffer.withUnsafeReadableBytes { try incoming.append($0) } }
        moved.withLock { $0 += Int64(buffer.readableBytes) }
    }

    func finish(beforePublish: @escaping @Sendable () throws -> Void = {}) async throws -> (
        published: PublishedArtifact, computed: ArtifactDigests
    ) {
        try await FileWork.run {
            let (published, computed) = try incoming.finish(beforePublish: beforePublish)
            return (published, computed)
        }
    }

    var received: Int64 { incoming.received }
    var resumedFrom: Int64 { incoming.resumedFrom }
}
