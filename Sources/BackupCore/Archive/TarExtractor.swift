#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What an extraction wrote.
public struct ExtractReport: Sendable, Equatable, Codable {
    public var entries = 0
    public var bytes: Int64 = 0
    /// Members not materialised (volume labels, devices without privilege, unknown types).
    public var skipped: [String] = []
}

/// Extracts tar members into a target folder and never writes outside it.
///
/// Every path is resolved one component at a time from the target with `O_NOFOLLOW`, so no
/// symlink, whether in the archive or already on disk, is ever followed. Members with an
/// absolute path, a `..` component, or a symlink or hard link that leads outside the target
/// are refused with an error naming the member. Existing files are replaced by unlinking
/// first (never written through). Runs of zeros become holes. Folder modes and times are set
/// last, so read-only folders can be filled.
public final class TarExtractor {
    public let target: String
    /// Restore owners (uid/gid) as well as modes; the default is to do so when running as root.
    public var restoreOwners = geteuid() == 0
    private let targetFD: Int32
    private var deferredFolders: [(path: [[UInt8]], entry: TarEntry)] = []
    private var cachedParent: (path: [[UInt8]], fd: Int32)?
    private static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    /// Opens (creating if needed, mode 0700) the target folder.
    public init(target: String) throws {
        try FileSystem.makeDirectories(target)
        self.target = target
        targetFD = try FileDescriptor.open(target, O_RDONLY | O_DIRECTORY).rawValue
    }

    deinit {
        if let cachedParent, cachedParent.fd != targetFD { close(cachedParent.fd) }
        close(targetFD)
    }

    /// Extracts every member `reader` yields.
    public func extract(from reader: TarReader) throws -> ExtractReport {
        var report = ExtractReport()
        while let entry = try reader.next() {
            try extract(entry, from: reader, report: &report)
            report.entries += 1
        }
        try applyFolderMetadata()
        return report
    }

    private func extract(_ entry: TarEntry, from reader: TarReader, report: inout ExtractReport) throws {
        switch entry.kind {
        case .volumeLabel, .unknown:
            report.skipped.append(entry.path)
            return
        default: break
        }
        let components = try safeComponents(entry.pathBytes, entry: entry, what: "path")
        guard let name = components.last else {
            if entry.kind == .directory { return }  // "./": the target itself.
            throw hostile(entry, "has an empty name")
        }
        let parentPath = Array(components.dropLast())
        let parent = try openParent(parentPath, entry: entry)
        switch entry.kind {
        case .directory:
            try makeFolder(name, in: parent, entry: entry)
            deferredFolders.append((components, entry))
        case .file:
            try removeExisting(name, in: parent, entry: entry)
            report.bytes += try writeFile(name, in: parent, entry: entry, reader: reader)
        case .symlink:
            let link = entry.linkBytes ?? []
            try checkSymlinkStaysInside(link, parent: parentPath, entry: entry)
            try removeExisting(name, in: parent, entry: entry)
            try call(entry, "create the symlink") {
                link.withCString { l in name.withCString { symlinkat(l, parent, $0) } }
            }
            try applyMetadata(entry, name: name, in: parent, isLink: true)
        case .hardlink:
            let source = try safeComponents(entry.linkBytes ?? [], entry: entry, what: "link target")
            guard let sourceName = source.last else { throw hostile(entry, "is a hard link with an empty target") }
            if source == components { return }  // A link to itself: the file is already there.
            let sourceParent = try openFolder(Array(source.dropLast()), entry: entry, create: false)
            defer { if sourceParent != targetFD { close(sourceParent) } }
            try removeExisting(name, in: parent, entry: entry)
            try call(entry, "create the hard link") {
                sourceName.withCString { s in name.withCString { linkat(sourceParent, s, parent, $0, 0) } }
            }
        case .fifo:
            try removeExisting(name, in: parent, entry: entry)
            try call(entry, "create the FIFO") { name.withCString { mkfifoat(parent, $0, mode_t(entry.mode & 0o777)) } }
            try applyMetadata(entry, name: name, in: parent, isLink: false)
        case .characterDevice, .blockDevice:
            let type = entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            let (major, minor) = (
                UInt64(truncatingIfNeeded: entry.deviceMajor), UInt64(truncatingIfNeeded: entry.deviceMinor)
            )
            let dev = dev_t((major & 0xFFF) << 8 | (major & ~0xFFF) << 32 | (minor & 0xFF) | (minor & ~0xFF) << 12)
            try removeExisting(name, in: parent, entry: entry)
            let rc = name.withCString { mknodat(parent, $0, type | mode_t(entry.mode & 0o777), dev) }
            if rc != 0 {
                guard errno == EPERM else { throw failure(entry, "create the device", errno) }
                report.skipped.append(entry.path)  // Devices need privilege; not a backup's content.
                return
            }
            try applyMetadata(entry, name: name, in: parent, isLink: false)
        case .volumeLabel, .unknown:
            return
        }
    }

    // MARK: - Paths

    /// The components of a member path, refusing absolute paths and `..`.
    private func safeComponents(_ bytes: [UInt8], entry: TarEntry, what: String) throws -> [[UInt8]] {
        if bytes.first == 0x2F {
            throw hostile(entry, "has an absolute \(what) '\(String(decoding: bytes, as: UTF8.self))'")
        }
        var out: [[UInt8]] = []
        for part in bytes.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if part.elementsEqual([0x2E]) { continue }
            if part.elementsEqual([0x2E, 0x2E]) {
                throw hostile(entry, "has a '..' component in its \(what) '\(String(decoding: bytes, as: UTF8.self))'")
            }
            out.append(Array(part))
        }
        return out
    }

    /// A relative symlink must resolve, lexically from its own folder, to a place inside the
    /// target; an absolute one never does.
    private func checkSymlinkStaysInside(_ link: [UInt8], parent: [[UInt8]], entry: TarEntry) throws {
        let shown = String(decoding: link, as: UTF8.self)
        guard link.first != 0x2F else { throw hostile(entry, "is a symlink to the absolute path '\(shown)'") }
        var depth = parent.count
        for part in link.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if part.elementsEqual([0x2E]) { continue }
            if part.elementsEqual([0x2E, 0x2E]) {
                depth -= 1
                if depth < 0 { throw hostile(entry, "is a symlink to '\(shown)', outside the target") }
            } else {
                depth += 1
            }
        }
    }

    private func openParent(_ path: [[UInt8]], entry: TarEntry) throws -> Int32 {
        if let cachedParent, cachedParent.path == path { return cachedParent.fd }
        let fd = try openFolder(path, entry: entry, create: true)
        if let cachedParent, cachedParent.fd != targetFD { close(cachedParent.fd) }
        cachedParent = (path, fd)
        return fd
    }

    /// Opens a folder inside the target one component at a time, never following a symlink.
    private func openFolder(_ path: [[UInt8]], entry: TarEntry, create: Bool) throws -> Int32 {
        var fd = targetFD
        for (i, part) in path.enumerated() {
            var next = part.withCString { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if next < 0 && errno == ENOENT && create {
                if part.withCString({ mkdirat(fd, $0, 0o700) }) != 0 && errno != EEXIST {
                    let e = errno
                    if fd != targetFD { close(fd) }
                    throw failure(entry, "create a folder for", e)
                }
                next = part.withCString { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            }
            let e = errno
            if fd != targetFD { close(fd) }
            guard next >= 0 else {
                let shown = path[0...i].map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
                if e == ELOOP || e == ENOTDIR {
                    throw hostile(
                        entry,
                        "would be written through '\(shown)', which is not a folder (a symlink or file is in the way)")
                }
                throw failure(entry, "open the folder '\(shown)' for", e)
            }
            fd = next
        }
        return fd
    }

    private func makeFolder(_ name: [UInt8], in parent: Int32, entry: TarEntry) throws {
        if name.withCString({ mkdirat(parent, $0, 0o700) }) == 0 { return }
        guard errno == EEXIST else { throw failure(entry, "create the folder", errno) }
        var st = stat()
        guard name.withCString({ fstatat(parent, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            throw failure(entry, "inspect", errno)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { return }
        try removeExisting(name, in: parent, entry: entry)
        try call(entry, "create the folder") { name.withCString { mkdirat(parent, $0, 0o700) } }
    }

    /// Removes a non-folder in the way; a folder in the way of a non-folder is an error.
    private func removeExisting(_ name: [UInt8], in parent: Int32, entry: TarEntry) throws {
        if name.withCString({ unlinkat(parent, $0, 0) }) == 0 || errno == ENOENT { return }
        if errno == EISDIR || errno == EPERM {
            throw hostile(entry, "would replace an existing folder")
        }
        throw failure(entry, "replace the existing file", errno)
    }

    // MARK: - Data and metadata

    private func writeFile(_ name: [UInt8], in parent: Int32, entry: TarEntry, reader: TarReader) throws -> Int64 {
        let raw = name.withCString { openat(parent, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard raw >= 0 else { throw failure(entry, "create", errno) }
        let fd = FileDescriptor(rawValue: raw, path: target + "/" + entry.path)
        var written: Int64 = 0
        try withFileDescriptor(fd) { fd in
            try reader.readData { offset, bytes in
                written += Int64(bytes.count)
                // A freshly created file reads as zeros wherever nothing was written.
                let isZero = TarExtractor.zeros.withUnsafeBytes { z in
                    bytes.count <= z.count && memcmp(bytes.baseAddress!, z.baseAddress!, bytes.count) == 0
                }
                if !isZero { try fd.write(bytes, at: offset) }
            }
            try fd.truncate(to: entry.size)
            try applyMetadata(entry, fd: fd.rawValue)
        }
        return written
    }

    private func applyMetadata(_ entry: TarEntry, fd: Int32) throws {
        if restoreOwners { try call(entry, "set the owner of") { fchown(fd, uid_t(entry.uid), gid_t(entry.gid)) } }
        try call(entry, "set the mode of") { fchmod(fd, mode_t(entry.mode & modeMask)) }
        var times = [
            timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0),
            timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0),
        ]
        try call(entry, "set the time of") { futimens(fd, &times) }
    }

    private func applyMetadata(_ entry: TarEntry, name: [UInt8], in parent: Int32, isLink: Bool) throws {
        if restoreOwners {
            try call(entry, "set the owner of") {
                name.withCString { fchownat(parent, $0, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW) }
            }
        }
        if !isLink {
            try call(entry, "set the mode of") {
                name.withCString { fchmodat(parent, $0, mode_t(entry.mode & modeMask), 0) }
            }
        }
        var times = [
            timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0),
            timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0),
        ]
        try call(entry, "set the time of") { name.withCString { utimensat(parent, $0, &times, AT_SYMLINK_NOFOLLOW) } }
    }

    /// Folder modes and times, deepest first, after their contents are in place.
    private func applyFolderMetadata() throws {
        if let cachedParent, cachedParent.fd != targetFD { close(cachedParent.fd) }
        cachedParent = nil
        for (path, entry) in deferredFolders.reversed() {
            let fd = try openFolder(path, entry: entry, create: false)
            defer { if fd != targetFD { close(fd) } }
            try applyMetadata(entry, fd: fd)
        }
        deferredFolders = []
    }

    /// Set-user and set-group bits are restored only along with owners.
    private var modeMask: UInt32 { restoreOwners ? 0o7777 : 0o1777 }

    // MARK: - Errors

    private func call(_ entry: TarEntry, _ what: String, _ body: () -> Int32) throws {
        guard body() == 0 else { throw failure(entry, what, errno) }
    }

    private func failure(_ entry: TarEntry, _ what: String, _ code: Int32) -> BackupError {
        BackupError.posix(what, path: "\(target)/\(entry.path)", errno: code)
    }

    private func hostile(_ entry: TarEntry, _ reason: String) -> BackupError {
        BackupError(
            .hostileEntry,
            "Refusing archive member '\(entry.path)' (tar byte \(entry.headerOffset)): it \(reason); nothing was written outside '\(target)'."
        )
    }
}
