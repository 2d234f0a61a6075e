import Foundation
import Testing

@testable import BackupCore

/// The services' heap trim finds glibc's `malloc_trim` and gives freed pages back.
struct HeapTrimTests {
    /// Anonymous resident memory of this process, from /proc.
    static func anonymousKiB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    @Test func freedBlocksBetweenLiveOnesGoBackToTheSystem() throws {
        #expect(HeapTrim.isAvailable)
        // 64 MiB in 1 KiB blocks, one in 64 kept: the freed 63 KiB runs lie between live blocks,
        // where glibc never returns them on its own (only the top of an arena shrinks).
        let blocks = (0..<65_536).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 16) }
        for block in blocks { block.initializeMemory(as: UInt8.self, repeating: 1, count: 1024) }
        for (i, block) in blocks.enumerated() where !i.isMultiple(of: 64) { block.deallocate() }
        let before = try Self.anonymousKiB()
        HeapTrim.trim()
        let after = try Self.anonymousKiB()
        for (i, block) in blocks.enumerated() where i.isMultiple(of: 64) { block.deallocate() }
        // About 60 MiB can go; other tests allocate meanwhile, so ask for well under that.
        #expect(before - after > 24 * 1024, "RssAnon \(before) kB before the trim, \(after) kB after")
    }
}
