import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// A file over 8 GiB, the limit of the ustar size field, round-trips through a pax size
/// record. The file is sparse so that the test needs little disk; its holes are archived as
/// zeros (a plain tar) and become holes again on extraction.
@Suite(.timeLimit(.minutes(10)))
struct LargeFileTests {
    static let size: Int64 = 8 * 1024 * 1024 * 1024 + 12_345
    static let marks: [(Int64, String)] = [(0, "head"), (4 * 1024 * 1024 * 1024 + 1, "middle"), (size - 4, "tail")]

    @Test func aSparseFileOver8GiBRoundTrips() async throws {
        try await blocking {
            try withTemporaryDirectory("large") { dir in
                let source = dir.file("src/big.img")
                try FileManager.default.createDirectory(atPath: dir.file("src"), withIntermediateDirectories: true)
                let fd = try FileDescriptor.create(source, mode: 0o640)
                try withFileDescriptor(fd) { fd in
                    try fd.truncate(to: Self.size)
                    for (offset, text) in Self.marks { try fd.write(Array(text.utf8), at: offset) }
                }
                let artifact = dir.file("big.tar.gz")
                let result = try ArchiveRoundTripTests.archive(dir.file("src"), name: "src", to: artifact)
                #expect(result.tar.size > Self.size)

                let entries = try ArchiveInspector.list(artifact)
                #expect(entries.map(\.path) == ["src/", "src/big.img"])
                #expect(entries.last?.size == Self.size)

                let report = try ArchiveInspector.extract(artifact, to: dir.file("out"))
                #expect(report.bytes == Self.size)
                let restored = dir.file("out/src/big.img")
                var st = stat()
                #expect(stat(restored, &st) == 0)
                #expect(Int64(st.st_size) == Self.size)
                #expect(st.st_mode & 0o777 == 0o640)
                #expect(Int64(st.st_blocks) * 512 < 64 * 1024 * 1024, "runs of zeros are restored as holes")
                // Equal content: wherever either file has data, the bytes agree; elsewhere both are holes.
                for (start, end) in try dataRegions(source) + dataRegions(restored) {
                    #expect(try read(source, start, end) == read(restored, start, end), "bytes \(start)..<\(end)")
                }
                for (offset, text) in Self.marks {
                    #expect(try read(restored, offset, offset + Int64(text.utf8.count)) == Array(text.utf8))
                }
            }
        }
    }

    /// The (start, end) byte ranges that hold data, by SEEK_DATA/SEEK_HOLE.
    private func dataRegions(_ path: String) throws -> [(Int64, Int64)] {
        let fd = try FileDescriptor.openForReading(path)
        return try withFileDescriptor(fd) { fd in
            var regions: [(Int64, Int64)] = []
            var at: off_t = 0
            while true {
                let start = lseek(fd.rawValue, at, 3 /* SEEK_DATA */)
                if start < 0 { break }
                let end = lseek(fd.rawValue, start, 4 /* SEEK_HOLE */)
                regions.append((Int64(start), Int64(end)))
                at = end
            }
            return regions
        }
    }

    private func read(_ path: String, _ start: Int64, _ end: Int64) throws -> [UInt8] {
        let fd = try FileDescriptor.openForReading(path)
        return try withFileDescriptor(fd) { fd in
            var out: [UInt8] = []
            var at = start
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while at < end {
                let want = Int(min(Int64(buffer.count), end - at))
                let n = buffer.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, want, off_t(at)) }
                guard n > 0 else { throw BackupError(.io, "short read of \(path)") }
                out += buffer[0..<n]
                at += Int64(n)
            }
            return out
        }
    }
}
