import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `repairLastLinks` did to one source folder.
public struct LastLinkRepair: Sendable, Equatable {
    public var sourceFolder: String
    /// The stamp `last` now points to.
    public var stamp: String
    /// What was wrong: "missing", "stale", "collapsed".
    public var problem: String
    /// Where a collapsed `last` folder holding files found nowhere else was moved, if any.
    public var keptAside: String?
}

extension Store {
    /// Points `<source>/last` at `stamp` atomically (a new symlink renamed over the old).
    /// Returns a warning instead of touching a `last` that is a folder.
    func updateLastLink(_ sourceFolder: String, to stamp: String) throws -> String? {
        let link = sourceFolder + "/last"
        if let st = try FileSystem.linkStatus(link), (st.st_mode & S_IFMT) == S_IFDIR {
            return
                "'\(link)' is a folder, not a link (a careless copy collapsed it); run 'scm-backup lastlinks --store \(root)'."
        }
        let temp = sourceFolder + "/.last.partial"
        unlink(temp)  // A leftover from a crashed update; ENOENT is the usual answer.
        guard symlink(stamp, temp) == 0 else { throw BackupError.posix("create the link", path: temp, errno: errno) }
        try FileSystem.rename(temp, to: link)
        try FileSystem.syncDirectory(sourceFolder)
        return nil
    }

    /// Makes every source folder's `last` a relative link to its newest stamp that holds an
    /// artifact. A `last` that is a folder (a copy that collapsed the link) is removed when
    /// every file in it is byte-identical to the same file in a stamp folder; otherwise it is
    /// moved aside to `last.collapsed-<stamp>` and reported, never deleted.
    public func repairLastLinks(dryRun: Bool = false) throws -> [LastLinkRepair] {
        let scan = try self.scan()
        var newest: [String: String] = [:]
        for artifact in scan.artifacts {
            guard let loc = artifact.location else { continue }
            let folder = root + "/" + loc.sourceFolder
            if let seen = newest[folder], seen >= loc.stamp { continue }
            newest[folder] = loc.stamp
        }
        var repairs: [LastLinkRepair] = []
        for (folder, stamp) in newest.sorted(by: { $0.key < $1.key }) {
            let link = folder + "/last"
            var repair = LastLinkRepair(sourceFolder: folder, stamp: stamp, problem: "")
            if let st = try FileSystem.linkStatus(link) {
                switch st.st_mode & S_IFMT {
                case S_IFLNK:
                    let target = try FileManager.default.destinationOfSymbolicLink(atPath: link)
                    if target == stamp { continue }
                    repair.problem = "stale"
                case S_IFDIR:
                    repair.problem = "collapsed"
                    if !dryRun { repair.keptAside = try retireCollapsedLast(link, folder: folder, stamp: stamp) }
                default:
                    throw BackupError(.io, "'\(link)' is neither a link nor a folder; remove it by hand.")
                }
            } else {
                repair.problem = "missing"
            }
            if !dryRun { _ = try updateLastLink(folder, to: stamp) }
            repairs.append(repair)
        }
        return repairs
    }

    /// Removes a collapsed `last` folder if all it holds is a copy of some stamp's files;
    /// otherwise moves it aside. Returns the new place when moved.
    private func retireCollapsedLast(_ link: String, folder: String, stamp: String) throws -> String? {
        let files = try FileSystem.entries(of: link)
        var candidates = [stamp]
        if let f = files.first(where: { $0.hasSuffix(".tar.gz") }) {
            // The copy may be of an older stamp: find the stamp folder holding the same name.
            let scan = try self.scan([folder])
            candidates += scan.artifacts.compactMap { a in
                (a.path as NSString).lastPathComponent == f ? a.location?.stamp : nil
            }
        }
        for candidate in candidates {
            let stampFolder = folder + "/" + candidate
            var identical = true
            for name in files {
                let a = link + "/" + name
                let b = stampFolder + "/" + name
                guard let sa = try FileSystem.linkStatus(a), (sa.st_mode & S_IFMT) == S_IFREG,
                    let sb = try FileSystem.linkStatus(b), sa.st_size == sb.st_size,
                    try Store.digest(a, .sha256) == Store.digest(b, .sha256)
                else {
                    identical = false
                    break
                }
            }
            if identical {
                for name in files {
                    guard unlink(link + "/" + name) == 0 else {
                        throw BackupError.posix("remove", path: link + "/" + name, errno: errno)
                    }
                }
                guard rmdir(link) == 0 else { throw BackupError.posix("remove", path: link, errno: errno) }
                return nil
            }
        }
        let aside = folder + "/last.collapsed-" + stamp.replacingOccurrences(of: "/", with: "")
        try FileSystem.rename(link, to: aside)
        return aside
    }
}
