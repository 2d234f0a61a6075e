import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One file-system object to archive: where it is, and what it looked like when scanned.
public struct ScannedEntry: Sendable {
    /// The absolute path of the object (raw bytes).
    public var sourcePath: [UInt8]
    /// The header to write; its size, mode, times and owner come from the scan.
    public var header: TarEntry
    /// Identity and change stamps from the scan, compared again when the data is read.
    public var device: UInt64
    public var inode: UInt64
    public var changeTime: Int64
}

/// The ordered list of what an archive of a tree will hold.
public struct ScanPlan: Sendable {
    public var root: String
    public var entries: [ScannedEntry]
    /// Objects that a tar cannot hold (sockets), by path; reported, not archived.
    public var skipped: [String]
}

/// Walks a folder without following symlinks and lists its objects in a stable order: each
/// folder before its contents, names sorted by their bytes. Hard links after the first are
/// recorded as links to it.
public enum TreeScanner {
    /// Scans `root` (a folder); every entry's archive path starts with `archiveRoot/`.
    public static func scan(_ root: String, archiveRoot: String) throws -> ScanPlan {
        guard let st = try FileSystem.linkStatus(root) else {
            throw BackupError(.sourceInvalid, "Source path '\(root)' does not exist.")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BackupError(.sourceInvalid, "Source path '\(root)' is not a folder.")
        }
        var scanner = Walker()
        try scanner.visit(Array(root.utf8), archivePath: Array(archiveRoot.utf8), status: st)
        return ScanPlan(root: root, entries: scanner.entries, skipped: scanner.skipped)
    }

    private struct Walker {
        var entries: [ScannedEntry] = []
        var skipped: [String] = []
        var firstLinkPath: [FileID: [UInt8]] = [:]
        var names = OwnerNames()

        struct FileID: Hashable {
            var device: UInt64
            var inode: UInt64
        }

        mutating func visit(_ path: [UInt8], archivePath: [UInt8], status st: stat) throws {
            let type = st.st_mode & S_IFMT
            var header = TarEntry(
                kind: .file, pathBytes: archivePath, size: 0, mode: UInt32(st.st_mode & 0o7777),
                uid: Int64(st.st_uid), gid: Int64(st.st_gid), userName: names.user(st.st_uid),
                groupName: names.group(st.st_gid), modificationTime: Int64(st.st_mtim.tv_sec))
            let id = FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if type != S_IFDIR && st.st_nlink > 1 {
                if let first = firstLinkPath[id] {
                    header.kind = .hardlink
                    header.linkBytes = first
                    append(path, header, st)
                    return
                }
                firstLinkPath[id] = archivePath
            }
            switch type {
            case S_IFREG:
                header.size = Int64(st.st_size)
            case S_IFDIR:
                header.kind = .directory
                header.pathBytes = archivePath + [0x2F]
            case S_IFLNK:
                header.kind = .symlink
                header.linkBytes = try readLink(path)
            case S_IFCHR, S_IFBLK:
                header.kind = type == S_IFCHR ? .characterDevice : .blockDevice
                let dev = UInt64(st.st_rdev)
                header.deviceMajor = Int64(((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF))
                header.deviceMinor = Int64((dev & 0xFF) | ((dev >> 12) & ~0xFF))
            case S_IFIFO:
                header.kind = .fifo
            default:
                skipped.append(String(decoding: path, as: UTF8.self))
                return
            }
            append(path, header, st)
            guard type == S_IFDIR else { return }
            for name in try children(of: path) {
                let child = path + [0x2F] + name
                var cst = stat()
                let rc = child.withCString { lstat($0, &cst) }
                guard rc == 0 else {
                    let e = errno
                    if e == ENOENT {
                        throw BackupError(
                            .sourceChanged,
                            "'\(String(decoding: child, as: UTF8.self))' vanished while the backup was scanning its folder. Run the backup again."
                        )
                    }
                    throw BackupError.posix("stat", path: String(decoding: child, as: UTF8.self), errno: e)
                }
                try visit(child, archivePath: archivePath + [0x2F] + name, status: cst)
            }
        }

        private mutating func append(_ path: [UInt8], _ header: TarEntry, _ st: stat) {
            entries.append(
                ScannedEntry(
                    sourcePath: path, header: header, device: UInt64(st.st_dev), inode: UInt64(st.st_ino),
                    changeTime: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)))
        }

        private func children(of path: [UInt8]) throws -> [[UInt8]] {
            guard let dir = path.withCString({ opendir($0) }) else {
                throw BackupError.posix("list", path: String(decoding: path, as: UTF8.self), errno: errno)
            }
            defer { closedir(dir) }
            var names: [[UInt8]] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [UInt8] in
                    Array(raw.prefix(while: { $0 != 0 }))
                }
                if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
            }
            return names.sorted { $0.lexicographicallyPrecedes($1) }
        }

        private func readLink(_ path: [UInt8]) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = path.withCString { p in
                buffer.withUnsafeMutableBytes {
                    readlink(p, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
                }
            }
            guard n >= 0 else {
                throw BackupError.posix("read the link", path: String(decoding: path, as: UTF8.self), errno: errno)
            }
            return Array(buffer[0..<n])
        }
    }
}

extension Array where Element == UInt8 {
    /// Calls `body` with the bytes as a NUL-terminated C string.
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try (self + [0]).withUnsafeBufferPointer { buf in
            try buf.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}

/// Caches user and group names by id.
struct OwnerNames {
    private var users: [uid_t: String] = [:]
    private var groups: [gid_t: String] = [:]

    mutating func user(_ id: uid_t) -> String {
        if let name = users[id] { return name }
        let name = getpwuid(id).map { String(cString: $0.pointee.pw_name) } ?? ""
        users[id] = name
        return name
    }

    mutating func group(_ id: gid_t) -> String {
        if let name = groups[id] { return name }
        let name = getgrgid(id).map { String(cString: $0.pointee.gr_name) } ?? ""
        groups[id] = name
        return name
    }
}
