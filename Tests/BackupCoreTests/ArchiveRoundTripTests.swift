import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// Our archives against GNU tar, and GNU tar's against our extractor, byte for byte.
@Suite(.timeLimit(.minutes(5)))
struct ArchiveRoundTripTests {
    /// Archives `source` as `name` into `output` with gzip.
    static func archive(_ source: String, name: String = "tree", to output: String, level: Int32 = 6) throws
        -> ArchiveResult
    {
        let plan = try TreeScanner.scan(source, archiveRoot: name)
        var compressor = try GzipCompressor(level: level)
        let fd = try FileDescriptor.create(output)
        return try withFileDescriptor(fd) { try TreeArchiver().archive(plan, compressor: &compressor, to: $0) }
    }

    @Test func gnuTarListsAndExtractsOurArchiveIdentically() async throws {
        try await blocking {
            try withTemporaryDirectory("roundtrip") { dir in
                try FixtureTree.make(at: dir.file("src/tree"))
                let artifact = dir.file("tree.tar.gz")
                let result = try Self.archive(dir.file("src/tree"), to: artifact)

                let listing = try Command.run("tar", ["--quoting-style=literal", "-tzf", artifact])
                #expect(listing.status == 0, "\(listing.stderr)")
                let ours = try ArchiveInspector.list(artifact).map(\.path)
                #expect(listing.stdout.split(separator: "\n").map(String.init) == ours)
                #expect(result.entryCount == ours.count)

                try FileManager.default.createDirectory(atPath: dir.file("gnu"), withIntermediateDirectories: true)
                let extract = try Command.run("tar", ["-xzpf", artifact, "-C", dir.file("gnu")])
                #expect(extract.status == 0, "\(extract.stderr)")
                #expect(try TreeComparison.differences(dir.file("src/tree"), dir.file("gnu/tree")) == [])

                _ = try ArchiveInspector.extract(artifact, to: dir.file("ours"))
                #expect(try TreeComparison.differences(dir.file("src/tree"), dir.file("ours/tree")) == [])
            }
        }
    }

    @Test(arguments: ["gnu", "posix", "ustar"])
    func weExtractWhatGNUTarWrites(format: String) async throws {
        try await blocking {
            try withTemporaryDirectory("gnutar") { dir in
                try FixtureTree.make(at: dir.file("src/tree"))
                if format == "ustar" {
                    // ustar cannot hold the 300-byte path or the long link target; drop those.
                    try FileManager.default.removeItem(atPath: dir.file("src/tree/folder-with-a-fairly-long-name-0"))
                    try FileManager.default.removeItem(atPath: dir.file("src/tree/link-long-target"))
                }
                let artifact = dir.file("gnu.tar.gz")
                let made = try Command.run(
                    "tar", ["--format=\(format)", "-czf", artifact, "-C", dir.file("src"), "tree"])
                #expect(made.status == 0, "\(made.stderr)")
                _ = try ArchiveInspector.extract(artifact, to: dir.file("ours"))
                #expect(try TreeComparison.differences(dir.file("src/tree"), dir.file("ours/tree")) == [])
            }
        }
    }

    @Test func theSameTreeGivesTheSameBytes() async throws {
        try await blocking {
            try withTemporaryDirectory("determinism") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let first = try Self.archive(dir.file("tree"), to: dir.file("1.tar.gz"))
                let second = try Self.archive(dir.file("tree"), to: dir.file("2.tar.gz"))
                #expect(first == second)
                let a = try Store.digest(dir.file("1.tar.gz"), .both)
                let b = try Store.digest(dir.file("2.tar.gz"), .both)
                #expect(a == b)
                #expect(a == first.compressed, "the digests computed while writing are those of the file")
            }
        }
    }

    @Test func entriesAreSortedByteWiseWithFoldersFirst() async throws {
        try await blocking {
            try withTemporaryDirectory("order") { dir in
                try FileManager.default.createDirectory(atPath: dir.file("tree"), withIntermediateDirectories: true)
                for name in ["b", "a", "B", "a.txt", "a/z", "a/y"] {
                    let path = dir.file("tree/" + name)
                    if name.contains("/") || name == "a" {
                        try FileManager.default.createDirectory(
                            atPath: name == "a" ? path : (path as NSString).deletingLastPathComponent,
                            withIntermediateDirectories: true)
                    }
                    if name != "a" { #expect(FileManager.default.createFile(atPath: path, contents: Data(name.utf8))) }
                }
                _ = try Self.archive(dir.file("tree"), name: "t", to: dir.file("o.tar.gz"))
                #expect(
                    try ArchiveInspector.list(dir.file("o.tar.gz")).map(\.path) == [
                        "t/", "t/B", "t/a/", "t/a/y", "t/a/z", "t/a.txt", "t/b",
                    ])
            }
        }
    }

    @Test func aFileThatVanishesAfterTheScanIsAnErrorNamingIt() async throws {
        try await blocking {
            try withTemporaryDirectory("vanish") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let plan = try TreeScanner.scan(dir.file("tree"), archiveRoot: "tree")
                try FileManager.default.removeItem(atPath: dir.file("tree/data/random.bin"))
                var compressor = try GzipCompressor()
                let fd = try FileDescriptor.create(dir.file("out.tar.gz"))
                let error = #expect(throws: BackupError.self) {
                    try withFileDescriptor(fd) { try TreeArchiver().archive(plan, compressor: &compressor, to: $0) }
                }
                #expect(error?.code == .sourceChanged)
                #expect(error?.message.contains("data/random.bin") == true)
            }
        }
    }

    @Test(arguments: ["grow", "shrink", "rewrite"])
    func aFileThatChangesAfterTheScanIsAnErrorNamingIt(change: String) async throws {
        try await blocking {
            try withTemporaryDirectory("change") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let plan = try TreeScanner.scan(dir.file("tree"), archiveRoot: "tree")
                let victim = dir.file("tree/README.txt")
                switch change {
                case "grow": try Data("more".utf8).append(toFile: victim)
                case "shrink": try Data().write(to: URL(fileURLWithPath: victim))
                default:
                    // Same size, new bytes and a new change time.
                    let fd = try FileDescriptor.open(victim, O_WRONLY)
                    try withFileDescriptor(fd) { try $0.write(Array("B".utf8), at: 0) }
                }
                var compressor = try GzipCompressor()
                let fd = try FileDescriptor.create(dir.file("out.tar.gz"))
                let error = #expect(throws: BackupError.self) {
                    try withFileDescriptor(fd) { try TreeArchiver().archive(plan, compressor: &compressor, to: $0) }
                }
                #expect(error?.code == .sourceChanged)
                #expect(error?.message.contains("README.txt") == true)
            }
        }
    }

    @Test func aTruncatedGzipIsReportedWithItsOffset() async throws {
        try await blocking {
            try withTemporaryDirectory("truncated") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let artifact = dir.file("t.tar.gz")
                let result = try Self.archive(dir.file("tree"), to: artifact)
                let cut = result.compressed.size / 2
                guard truncate(artifact, off_t(cut)) == 0 else { throw BackupError(.io, "truncate failed") }
                let error = #expect(throws: BackupError.self) { try ArchiveInspector.check(artifact) }
                #expect(error?.code == .archiveTruncated)
                #expect(error?.message.contains("compressed byte \(cut)") == true, "\(error?.message ?? "")")
                #expect(
                    error?.message.contains("while reading 'tree/") == true, "names the member: \(error?.message ?? "")"
                )
            }
        }
    }

    @Test func aFlippedByteInTheGzipDataIsReported() async throws {
        try await blocking {
            try withTemporaryDirectory("flipped") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let artifact = dir.file("t.tar.gz")
                let result = try Self.archive(dir.file("tree"), to: artifact)
                try flipByte(artifact, at: result.compressed.size - 6)  // Inside the CRC-32 trailer.
                let error = #expect(throws: BackupError.self) { try ArchiveInspector.check(artifact) }
                #expect(error?.code == .archiveCorrupt)
                #expect(error?.message.contains("incorrect data check") == true, "\(error?.message ?? "")")
            }
        }
    }

    @Test func gzipWithTrailingGarbageIsRefusedButConcatenatedMembersAreRead() async throws {
        try await blocking {
            try withTemporaryDirectory("members") { dir in
                try FixtureTree.make(at: dir.file("tree"))
                let tar = dir.file("t.tar")
                #expect(try Command.run("tar", ["-cf", tar, "-C", dir.path, "tree"]).status == 0)
                // Split the tar in two gzip members, as `cat a.gz b.gz` gives.
                let bytes = try Data(contentsOf: URL(fileURLWithPath: tar))
                try bytes.prefix(4096).write(to: URL(fileURLWithPath: dir.file("a")))
                try bytes.dropFirst(4096).write(to: URL(fileURLWithPath: dir.file("b")))
                #expect(
                    try Command.run("sh", ["-c", "gzip -c a > t.tar.gz && gzip -c b >> t.tar.gz"], in: dir.path).status
                        == 0
                )
                #expect(
                    try ArchiveInspector.check(dir.file("t.tar.gz")).entries == (try ArchiveInspector.list(tar)).count)
                try Data("garbage".utf8).append(toFile: dir.file("t.tar.gz"))
                let error = #expect(throws: BackupError.self) { try ArchiveInspector.check(dir.file("t.tar.gz")) }
                #expect(error?.message.contains("garbage after its gzip data") == true)
            }
        }
    }
}

func flipByte(_ path: String, at offset: Int64) throws {
    let fd = try FileDescriptor.open(path, O_RDWR)
    try withFileDescriptor(fd) { fd in
        var byte: UInt8 = 0
        guard pread(fd.rawValue, &byte, 1, off_t(offset)) == 1 else { throw BackupError(.io, "cannot read \(path)") }
        byte ^= 0x20
        try withUnsafeBytes(of: &byte) { try fd.write($0, at: offset) }
    }
}

extension Data {
    func append(toFile path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: self)
        try handle.close()
    }
}
