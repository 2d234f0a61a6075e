import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Small file-system operations with the durability and permission rules of the store.
public enum FileSystem {
    /// Creates `path` and any missing parents with `mode` (0700 by default: stores hold secrets).
    /// Removes what a failed operation left at `path` (a file or a tree). Returns a note for
    /// that operation's error message: empty when nothing is left, else naming the path left
    /// behind and why, so that the first error stays the one reported and the second is said too.
    public static func removeLeftover(_ path: String) -> String {
        do {
            if try linkStatus(path) != nil { try FileManager.default.removeItem(atPath: path) }
            return ""
        } catch {
            return " ('\(path)' is left behind: \(error.localizedDescription))"
        }
    }

    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw BackupError(.io, "Cannot create folder '\(path)': a file of that name is in the way.")
            }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw BackupError.posix("create folder", path: path, errno: errno)
        }
        // mkdir applies the umask; set the mode we asked for exactly.
        if chmod(path, mode) != 0 { throw BackupError.posix("set the mode of", path: path, errno: errno) }
    }

    /// Flushes a folder's entries (a rename or create inside it) to stable storage.
    public static func syncDirectory(_ path: String) throws {
        let fd = try FileDescriptor.open(path, O_RDONLY | O_DIRECTORY)
        try withFileDescriptor(fd) { try $0.sync() }
    }

    /// Replaces `path` with `bytes` atomically: temp file, fsync, rename, folder fsync.
    ///
    /// A reader sees either the old content or the new, never a mix; after return the new
    /// content survives a crash.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let temp = path + ".partial"
        // A stale temp file from a crashed writer is ours to replace.
        unlink(temp)
        let fd = try FileDescriptor.create(temp, mode: mode)
        do {
            try withFileDescriptor(fd) { fd in
                // open() applies the umask; the mode asked for is the mode wanted.
                guard fchmod(fd.rawValue, mode) == 0 else {
                    throw BackupError.posix("set the mode of", path: temp, errno: errno)
                }
                try fd.write(bytes)
                try fd.sync()
            }
            try rename(temp, to: path)
        } catch {
            unlink(temp)
            throw error
        }
        try syncDirectory(folder.isEmpty ? "." : folder)
    }

    /// Renames `from` to `to`, replacing `to`.
    public static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw BackupError.posix("rename '\(from)' to", path: to, errno: errno)
        }
    }

    /// The status of `path` without following a final symlink, or nil if it does not exist.
    public static func linkStatus(_ path: String) throws -> stat? {
        var st = stat()
        if lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw BackupError.posix("stat", path: path, errno: errno)
    }

    /// The canonical absolute path (symlinks resolved), or nil if `path` does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads a whole small file (sidecars, markers); refuses files over `limit` bytes.
    public static func readSmallFile(_ path: String, limit: Int = 1 << 20) throws -> [UInt8] {
        let fd = try FileDescriptor.openForReading(path)
        return try withFileDescriptor(fd) { fd in
            var bytes = [UInt8](repeating: 0, count: limit + 1)
            let n = try bytes.withUnsafeMutableBytes { try fd.readFully(into: $0) }
            guard n <= limit else {
                throw BackupError(
                    .invalidArgument, "'\(path)' is larger than \(limit) bytes; it is not a sidecar or marker.")
            }
            return Array(bytes[0..<n])
        }
    }

    /// The first `count` bytes of a file (fewer if it is shorter).
    public static func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
        let fd = try FileDescriptor.openForReading(path)
        return try withFileDescriptor(fd) { fd in
            var bytes = [UInt8](repeating: 0, count: count)
            let n = try bytes.withUnsafeMutableBytes { try fd.readFully(into: $0) }
            return Array(bytes[0..<n])
        }
    }

    /// The names in a folder, sorted by their bytes; "." and ".." are left out.
    public static func entries(of path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw BackupError.posix("list", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}
