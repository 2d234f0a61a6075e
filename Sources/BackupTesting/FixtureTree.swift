import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A folder holding every kind of object a tar must carry: regular, empty and executable
/// files, nested and empty folders, relative symlinks, hard links, a FIFO, names longer than
/// 100 and than 256 bytes, UTF-8 and non-UTF-8 names, fixed mtimes.
public enum FixtureTree {
    /// Fills `root` (created if missing). Returns the relative paths made.
    @discardableResult
    public static func make(at root: String) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        var made: [String] = []
        func write(_ rel: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
            let path = root + "/" + rel
            try fm.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard fm.createFile(atPath: path, contents: Data(bytes)) else {
                throw BackupError(.io, "Cannot write fixture '\(path)'.")
            }
            chmod(path, mode)
            made.append(rel)
        }
        var rng = SeededGenerator(seed: 42)
        try write("README.txt", Array("A fixture tree for archive tests.\n".utf8))
        try write("empty.txt", [])
        try write("bin/run.sh", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755)
        try write("data/random.bin", rng.bytes(300_000))
        try write("data/block-aligned.bin", [UInt8](repeating: 7, count: 4096))
        try write("data/zeros.bin", [UInt8](repeating: 0, count: 200_000))
        let long100 = String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 60) + "/file-over-100.txt"
        try write(long100, Array("long path\n".utf8))
        let long300 =
            (0..<6).map { "folder-with-a-fairly-long-name-\($0)" }.joined(separator: "/") + "/"
            + String(repeating: "n", count: 90) + ".txt"
        try write(long300, Array("very long path\n".utf8))
        try write("utf8/ünïcödé-日本語.txt", Array("unicode\n".utf8))
        try write("secret/users.conf", Array("alice:$apr1$x$y\n".utf8), mode: 0o600)
        try fm.createDirectory(atPath: root + "/empty-folder", withIntermediateDirectories: true)
        made.append("empty-folder")
        try fm.createSymbolicLink(atPath: root + "/link-to-readme", withDestinationPath: "README.txt")
        try fm.createSymbolicLink(atPath: root + "/data/link-up", withDestinationPath: "../bin/run.sh")
        let longTarget = String(repeating: "../", count: 1) + long100
        try fm.createSymbolicLink(atPath: root + "/link-long-target", withDestinationPath: longTarget)
        made += ["link-to-readme", "data/link-up", "link-long-target"]
        guard link(root + "/README.txt", root + "/bin/hardlink-to-readme") == 0 else {
            throw BackupError(.io, "Cannot make a fixture hard link: \(String(cString: strerror(errno))).")
        }
        made.append("bin/hardlink-to-readme")
        guard mkfifo(root + "/data/fifo", 0o644) == 0 else {
            throw BackupError(.io, "Cannot make a fixture FIFO: \(String(cString: strerror(errno))).")
        }
        made.append("data/fifo")
        // A name that is not UTF-8.
        let raw: [UInt8] = Array((root + "/data/latin1-").utf8) + [0xE9, 0x74, 0xE9] + Array(".txt".utf8) + [0]
        let fd = raw.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        }
        guard fd >= 0 else { throw BackupError(.io, "Cannot make the non-UTF-8 fixture name.") }
        _ = Array("latin-1 name\n".utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        // Fixed times, so that archives of the tree are comparable across runs.
        try setTimes(root, seconds: 1_700_000_000)
        return made
    }

    /// Sets the mtime of everything under `root` (not following symlinks).
    public static func setTimes(_ root: String, seconds: Int) throws {
        let r = try Command.run("find", [root, "-exec", "touch", "-h", "-d", "@\(seconds)", "{}", "+"])
        guard r.status == 0 else { throw BackupError(.io, "Cannot set fixture times: \(r.stderr)") }
    }
}

/// A small deterministic random generator (SplitMix64) for reproducible fixture bytes.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    /// `count` random bytes, eight from each `next()`: filling megabytes one
    /// `UInt8.random(in:using:)` at a time takes seconds in a debug build, and a test that does
    /// so on Swift's cooperative pool starves every suite running beside it.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var at = 0
            while at < count {
                var word = next()
                let n = min(8, count - at)
                withUnsafeBytes(of: &word) {
                    raw.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: n)
                }
                at += n
            }
        }
        return out
    }
}
