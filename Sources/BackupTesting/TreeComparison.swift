import BackupCore
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Compares two folder trees object by object: type, bytes, mode, symlink target, mtime and
/// hard-link structure. Returns human-readable differences (empty when equal).
public enum TreeComparison {
    public static func differences(_ a: String, _ b: String, compareTimes: Bool = true) throws -> [String] {
        let left = try walk(a)
        let right = try walk(b)
        var out: [String] = []
        let names = Set(left.keys).union(right.keys).sorted()
        for name in names {
            guard let l = left[name] else { out.append("only in \(b): \(name)"); continue }
            guard let r = right[name] else { out.append("only in \(a): \(name)"); continue }
            if l.type != r.type { out.append("\(name): type \(l.type) vs \(r.type)"); continue }
            if l.mode != r.mode {
                out.append("\(name): mode \(String(l.mode, radix: 8)) vs \(String(r.mode, radix: 8))")
            }
            if l.content != r.content { out.append("\(name): content differs") }
            if compareTimes && l.type != "dir" && l.mtime != r.mtime {
                out.append("\(name): mtime \(l.mtime) vs \(r.mtime)")
            }
        }
        // Hard links: names sharing an inode on one side must share one on the other.
        func groups(_ tree: [String: Node]) -> Set<[String]> {
            Set(
                Dictionary(
                    grouping: tree.filter { $0.value.type == "file" && $0.value.links > 1 }, by: { $0.value.inode }
                )
                .values.map { $0.map(\.key).sorted() })
        }
        if groups(left) != groups(right) { out.append("hard-link groups differ: \(groups(left)) vs \(groups(right))") }
        return out
    }

    /// SHA-256 of a file whose path may not be UTF-8.
    static func sha256(ofRawPath path: [UInt8]) throws -> String {
        let fd = (path + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY) }
        }
        guard fd >= 0 else { throw BackupError(.io, "Cannot open '\(String(decoding: path, as: UTF8.self))'.") }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw BackupError(.io, "Cannot read '\(String(decoding: path, as: UTF8.self))'.") }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    struct Node {
        var type: String
        var mode: UInt32
        var content: String
        var mtime: Int
        var inode: UInt64
        var links: UInt64
    }

    static func walk(_ root: String) throws -> [String: Node] {
        var nodes: [String: Node] = [:]
        func visit(_ rel: [UInt8]) throws {
            let full = Array(root.utf8) + (rel.isEmpty ? [] : [0x2F] + rel)
            var st = stat()
            let rc = (full + [0]).withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { lstat($0.baseAddress!, &st) }
            }
            guard rc == 0 else { throw BackupError(.io, "Cannot stat '\(String(decoding: full, as: UTF8.self))'.") }
            let key = rel.map { String(format: "%02x", $0) }.joined()  // Raw bytes, not lossy strings.
            var node = Node(
                type: "", mode: UInt32(st.st_mode & 0o7777), content: "", mtime: Int(st.st_mtim.tv_sec),
                inode: UInt64(st.st_ino), links: UInt64(st.st_nlink))
            let path = String(decoding: full, as: UTF8.self)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                node.type = "dir"
                let dir = (full + [0]).withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) { opendir($0.baseAddress!) }
                }
                guard let dir else { throw BackupError(.io, "Cannot list '\(path)'.") }
                var children: [[UInt8]] = []
                while let e = readdir(dir) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                    if name != [0x2E] && name != [0x2E, 0x2E] { children.append(name) }
                }
                closedir(dir)
                if !rel.isEmpty { nodes[key] = node }
                for c in children { try visit(rel.isEmpty ? c : rel + [0x2F] + c) }
                return
            case S_IFREG:
                node.type = "file"
                node.content = try sha256(ofRawPath: full)
            case S_IFLNK:
                node.type = "symlink"
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = (full + [0]).withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) { name in
                        buffer.withUnsafeMutableBytes {
                            readlink(name.baseAddress!, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
                        }
                    }
                }
                guard n >= 0 else { throw BackupError(.io, "Cannot read link '\(path)'.") }
                node.content = String(decoding: buffer[0..<n], as: UTF8.self)
            case S_IFIFO: node.type = "fifo"
            default: node.type = "other"
            }
            nodes[key] = node
        }
        try visit([])
        return nodes
    }
}
