import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A POSIX file descriptor with errors that name the file; the owner closes it.
public struct FileDescriptor: Sendable {
    public let rawValue: Int32
    /// The path the descriptor was opened with, for error messages.
    public let path: String

    public init(rawValue: Int32, path: String) {
        self.rawValue = rawValue
        self.path = path
    }

    /// Opens `path` with `flags`; `mode` applies when the file is created.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws -> FileDescriptor {
        let fd = path.withCString { systemOpen($0, flags | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw BackupError.posix("open", path: path, errno: errno) }
        return FileDescriptor(rawValue: fd, path: path)
    }

    /// Opens `path` for reading.
    public static func openForReading(_ path: String) throws -> FileDescriptor {
        try open(path, O_RDONLY)
    }

    /// Opens `path` for reading under a shared `flock`, held until it is closed: a purge takes
    /// the exclusive lock without waiting, so a file being served or sent is never deleted
    /// under its reader (the purge skips it and says why).
    public static func openForSharedReading(_ path: String) throws -> FileDescriptor {
        let fd = try open(path, O_RDONLY)
        guard flock(fd.rawValue, LOCK_SH) == 0 else {
            let code = errno
            fd.closeAfterError()
            throw BackupError.posix("lock", path: path, errno: code)
        }
        return fd
    }

    /// Takes the exclusive `flock` without waiting; false when a reader holds it shared.
    public func tryLockExclusive() throws -> Bool {
        if flock(rawValue, LOCK_EX | LOCK_NB) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw BackupError.posix("lock", path: path, errno: errno)
    }

    /// Creates `path` exclusively for writing with `mode`; fails if it exists.
    public static func create(_ path: String, mode: mode_t = 0o600) throws -> FileDescriptor {
        try open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
    }

    /// Reads up to `buffer.count` bytes; returns 0 at end of file. Retries on EINTR.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = systemRead(rawValue, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw BackupError.posix("read", path: path, errno: errno)
        }
    }

    /// Fills `buffer` unless end of file comes first; returns the number of bytes read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Writes all of `bytes`. Retries on EINTR and short writes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(rawValue, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.posix("write", path: path, errno: errno)
            }
            offset += n
        }
    }

    /// Writes all of `bytes` at `offset` without moving the file position.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(rawValue, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.posix("write", path: path, errno: errno)
            }
            done += n
        }
    }

    /// Writes all of `bytes` at `offset` without moving the file position.
    public func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes the file's data and metadata to stable storage.
    public func sync() throws {
        guard fsync(rawValue) == 0 else { throw BackupError.posix("sync", path: path, errno: errno) }
    }

    /// Sets the file's length (used to restore sparse files and to drop partial tails).
    public func truncate(to length: Int64) throws {
        guard ftruncate(rawValue, off_t(length)) == 0 else {
            throw BackupError.posix("truncate", path: path, errno: errno)
        }
    }

    /// Moves the file position; returns the new position.
    @discardableResult
    public func seek(to offset: Int64) throws -> Int64 {
        let r = lseek(rawValue, off_t(offset), SEEK_SET)
        guard r >= 0 else { throw BackupError.posix("seek in", path: path, errno: errno) }
        return Int64(r)
    }

    /// The file's status.
    public func status() throws -> stat {
        var st = stat()
        guard fstat(rawValue, &st) == 0 else { throw BackupError.posix("stat", path: path, errno: errno) }
        return st
    }

    /// Closes the descriptor. Errors from close are reported: on NFS they carry write errors.
    public func close() throws {
        guard systemClose(rawValue) == 0 else { throw BackupError.posix("close", path: path, errno: errno) }
    }

    /// Closes the descriptor on a path where an error is already being reported.
    public func closeAfterError() {
        // The error being propagated is the one the user needs; a close failure here adds nothing.
        _ = systemClose(rawValue)
    }
}

/// Runs `body` with the descriptor, closing it afterwards; a close error is thrown only when
/// `body` succeeded.
public func withFileDescriptor<T>(_ fd: FileDescriptor, _ body: (FileDescriptor) throws -> T) throws -> T {
    let result: T
    do {
        result = try body(fd)
    } catch {
        fd.closeAfterError()
        throw error
    }
    try fd.close()
    return result
}

// The system calls under other names, so that the methods above can use the natural ones.
private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
private func systemRead(_ fd: Int32, _ buf: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buf, count)
}
private func systemWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buf, count)
}
private func systemClose(_ fd: Int32) -> Int32 {
    close(fd)
}
