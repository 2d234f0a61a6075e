import BackupTesting
import Crypto
import Foundation
import Testing

@testable import BackupCore

/// Every archive of the shared conformance corpus gives what its manifest says: entries as
/// listed, errors as errors, never a crash or a hang, nothing written outside the target.
@Suite(.timeLimit(.minutes(2)))
struct TarCorpusTests {
    @Test func manifestIsPresentAndComplete() async throws {
        try await blocking {
            let corpus = try TarCorpus.load()
            #expect(corpus.archives.count == 45)
            for archive in corpus.archives {
                #expect(FileManager.default.fileExists(atPath: corpus.folder + "/" + archive.file), "\(archive.file)")
            }
        }
    }

    @Test(arguments: TarCorpus.archivesForArguments.filter { $0.expect == "ok" }.map(\.file))
    func okArchiveListsAsManifested(_ file: String) async throws {
        try await blocking {
            let corpus = try TarCorpus.load()
            let archive = corpus.archives.first { $0.file == file }!
            let path = corpus.folder + "/" + file
            let entries: [TarEntry]
            do {
                entries = try ArchiveInspector.list(path)
            } catch {
                Issue.record("\(file) must list, but: \(error)")
                return
            }
            try expectEntries(entries, match: archive.entries ?? [], file: file, useHeaderLinks: false)
            // A full read-through (data and trailer) must succeed too.
            _ = try ArchiveInspector.check(path)

            guard archive.list_only != true else { return }
            try withTemporaryDirectory("corpus") { dir in
                let target = dir.file("target")
                _ = try ArchiveInspector.extract(path, to: target)
                var seen: [String: Int] = [:]
                for e in archive.entries ?? [] { seen[e.name, default: 0] += 1 }
                for e in archive.entries ?? [] where e.type == "file" && e.md5 != nil && seen[e.name] == 1 {
                    let rawName = e.name_hex.map(bytes(fromHex:)) ?? Array(e.name.utf8)
                    let data = try readRaw(Array(target.utf8) + [0x2F] + rawName)
                    let md5 = Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined()
                    #expect(md5 == e.md5, "\(file): \(e.name)")
                }
            }
        }
    }

    @Test(arguments: TarCorpus.archivesForArguments.filter { $0.expect == "error" }.map(\.file))
    func damagedArchiveFailsWithAReportedError(_ file: String) async throws {
        try await blocking {
            let corpus = try TarCorpus.load()
            let archive = corpus.archives.first { $0.file == file }!
            do {
                let report = try ArchiveInspector.check(corpus.folder + "/" + file)
                // Divergent archives may be read the way Go and Python do.
                #expect(archive.divergent == true, "\(file) must fail, but read \(report.entries) members")
            } catch let error as BackupError {
                #expect([.archiveCorrupt, .archiveTruncated, .hostileEntry].contains(error.code), "\(file): \(error)")
                #expect(error.message.contains(file), "the error names the archive: \(error.message)")
            }
        }
    }

    @Test(arguments: TarCorpus.archivesForArguments.filter { $0.expect == "refuse-extract" }.map(\.file))
    func hostileArchiveWritesNothingOutsideTheTarget(_ file: String) async throws {
        try await blocking {
            let corpus = try TarCorpus.load()
            let archive = corpus.archives.first { $0.file == file }!
            let path = corpus.folder + "/" + file
            try expectEntries(
                try ArchiveInspector.list(path), match: archive.entries ?? [], file: file, useHeaderLinks: true)
            let absEscape = "/tmp/abs-escape"
            let absEscapeBefore = FileManager.default.fileExists(atPath: absEscape)
            try withTemporaryDirectory("hostile") { dir in
                let target = dir.file("a/b/target")
                try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
                let sentinel = dir.file("a/b/outside-secret")
                try "secret\n".write(toFile: sentinel, atomically: false, encoding: .utf8)
                let before = try outsideListing(dir.path, excluding: target)
                do {
                    _ = try ArchiveInspector.extract(path, to: target)
                } catch let error as BackupError {
                    #expect(error.code == .hostileEntry, "\(file): \(error)")
                    #expect(error.message.contains("Refusing archive member"), "\(error.message)")
                }
                #expect(try outsideListing(dir.path, excluding: target) == before, "\(file) wrote outside the target")
                #expect(try String(contentsOfFile: sentinel, encoding: .utf8) == "secret\n")
            }
            if !absEscapeBefore { #expect(!FileManager.default.fileExists(atPath: absEscape)) }
        }
    }

    // MARK: - Helpers

    private func expectEntries(
        _ entries: [TarEntry], match expected: [TarCorpus.Entry], file: String, useHeaderLinks: Bool
    ) throws {
        #expect(entries.count == expected.count, "\(file): \(entries.count) entries, manifest has \(expected.count)")
        for (got, want) in zip(entries, expected) {
            if let hex = want.name_hex {
                #expect(got.pathBytes.map { String(format: "%02x", $0) }.joined() == hex, "\(file)")
            } else {
                var name = got.path
                var wantName = want.name
                if got.kind == .directory {
                    if name.hasSuffix("/") { name.removeLast() }
                    if wantName.hasSuffix("/") { wantName.removeLast() }
                }
                #expect(name == wantName, "\(file)")
            }
            #expect(got.kind.description == want.type, "\(file): \(want.name)")
            #expect(got.size == want.size, "\(file): \(want.name)")
            let wantLink = useHeaderLinks ? (want.header_linkname ?? want.linkname) : want.linkname
            if got.kind == .hardlink && !useHeaderLinks {
                // GNU tar strips a leading "/" or "../" from hard-link targets when listing.
                #expect(got.linkTarget?.hasSuffix(wantLink ?? "") == true, "\(file): \(want.name)")
            } else {
                #expect(got.linkTarget == wantLink, "\(file): \(want.name)")
            }
        }
    }

    private func bytes(fromHex hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map {
            UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
        }
    }

    /// Reads a file whose path may not be UTF-8.
    private func readRaw(_ path: [UInt8]) throws -> [UInt8] {
        let fd = (path + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY) }
        }
        guard fd >= 0 else { throw BackupError(.notFound, "cannot open \(String(decoding: path, as: UTF8.self))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    /// Everything under `root` except the target's subtree, with sizes and mtimes.
    private func outsideListing(_ root: String, excluding target: String) throws -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for rel in fm.subpaths(atPath: root) ?? [] {
            let full = root + "/" + rel
            if full == target || full.hasPrefix(target + "/") { continue }
            let attrs = try fm.attributesOfItem(atPath: full)
            out.append("\(rel) \(attrs[.size] ?? 0) \(attrs[.modificationDate] ?? "")")
        }
        return out.sorted()
    }
}
