import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The sample sources and manipulations the demo uses.
enum DemoSources {
    static func make(config: String, project: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: config, withIntermediateDirectories: true)
        try "alice:$apr1$8Jq1$wUQnKfS1mS0m6kgqW0xQ9/\nbob:$apr1$hT2k$2a6nq3zXbJ0s5WmJ6yq6v1\n".write(
            toFile: config + "/users.conf", atomically: true, encoding: .utf8)
        try "[groups]\ndevs = alice, bob\n\n[/]\n* = r\n@devs = rw\n".write(
            toFile: config + "/authz.conf", atomically: true, encoding: .utf8)
        chmod(config + "/users.conf", 0o600)
        let deep = project + "/src/" + String(repeating: "nested-folder-name/", count: 6) + "module"
        try fm.createDirectory(atPath: deep, withIntermediateDirectories: true)
        for i in 0..<40 {
            let text = (0..<(50 + i * 7)).map { "line \($0) of file \(i): let value\($0) = \($0 * i)\n" }.joined()
            try text.write(toFile: project + "/src/file\(i).swift", atomically: true, encoding: .utf8)
        }
        try "deep file with a path over 100 bytes\n".write(
            toFile: deep + "/Deep.swift", atomically: true, encoding: .utf8)
        try "# Demo project\n".write(toFile: project + "/README.md", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: project + "/README.link", withDestinationPath: "README.md")
        guard link(project + "/README.md", project + "/README.hardlink") == 0 else {
            throw BackupError(.io, "Cannot make the demo's hard link: \(String(cString: strerror(errno))).")
        }
        chmod(project + "/src/file0.swift", 0o755)
    }

    /// Copies `store` to `to` the way a careless transfer would, collapsing every `last` link
    /// into a folder; then flips one byte of one artifact. Returns the damaged artifact's path.
    static func carelessCopy(store: String, to copy: String) throws -> String {
        let fm = FileManager.default
        try fm.copyItem(atPath: store, toPath: copy)
        let scan = try Store(root: copy).scan()
        var folders = Set<String>()
        for a in scan.artifacts { if let l = a.location { folders.insert(copy + "/" + l.sourceFolder) } }
        for folder in folders {
            let link = folder + "/last"
            let target = try fm.destinationOfSymbolicLink(atPath: link)
            try fm.removeItem(atPath: link)
            try fm.copyItem(atPath: folder + "/" + target, toPath: link)
        }
        let victim = scan.artifacts.first!.path
        let fd = try FileDescriptor.open(victim, O_RDWR)
        try withFileDescriptor(fd) { fd in
            var byte: UInt8 = 0
            let at = Int64(try fd.status().st_size / 2)
            guard pread(fd.rawValue, &byte, 1, off_t(at)) == 1 else {
                throw BackupError(.io, "Cannot read '\(victim)'.")
            }
            byte ^= 0x01
            try withUnsafeBytes(of: &byte) { try fd.write($0, at: at) }
        }
        return victim
    }

    /// Differences between two trees: names, types, bytes, modes, link targets, mtimes.
    static func compare(_ a: String, _ b: String) throws -> [String] {
        let fm = FileManager.default
        let left = Set(fm.subpaths(atPath: a) ?? [])
        let right = Set(fm.subpaths(atPath: b) ?? [])
        var out: [String] = []
        if left != right { out.append("entries differ: \(left.symmetricDifference(right).sorted())") }
        for p in left.intersection(right).sorted() {
            var sa = stat()
            var sb = stat()
            lstat(a + "/" + p, &sa)
            lstat(b + "/" + p, &sb)
            if sa.st_mode != sb.st_mode { out.append("\(p): mode") }
            if (sa.st_mode & S_IFMT) != S_IFDIR && sa.st_mtim.tv_sec != sb.st_mtim.tv_sec { out.append("\(p): mtime") }
            if (sa.st_mode & S_IFMT) == S_IFREG, fm.contents(atPath: a + "/" + p) != fm.contents(atPath: b + "/" + p) {
                out.append("\(p): content")
            }
            if (sa.st_mode & S_IFMT) == S_IFLNK,
                try fm.destinationOfSymbolicLink(atPath: a + "/" + p)
                    != fm.destinationOfSymbolicLink(atPath: b + "/" + p)
            {
                out.append("\(p): link target")
            }
        }
        return out
    }
}
