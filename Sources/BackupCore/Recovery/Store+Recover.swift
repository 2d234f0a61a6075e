import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a recovery did.
public struct RecoverReport: Sendable, Codable {
    /// The artifact restored.
    public var artifact: String
    public var kind: String
    public var revision: String?
    /// Where the source now lives.
    public var target: String
    /// Where the source that was in the way was moved (with `force`), if anywhere.
    public var movedAside: String?
}

extension Store {
    /// The artifact of source `name` to recover: the one at `stamp` (`YYYY/MM/DD/HHMMSS` or
    /// `YYYYMMDDHHMMSS`) or else the newest one not flagged as a regression. `origin` picks
    /// the node when several hold a source of that name.
    public func findArtifact(name: String, origin: String? = nil, kind: String? = nil, at stamp: String? = nil) throws
        -> StoredArtifact
    {
        let all = try scan().artifacts.filter {
            $0.location?.source == name && (origin == nil || $0.location?.origin == origin)
                && (kind == nil || $0.location.flatMap { SourceKind(storeName: $0.kind)?.rawValue } == kind)
        }
        guard !all.isEmpty else {
            throw BackupError(
                .notFound,
                "No artifact of source '\(name)'\(origin.map { " from node '\($0)'" } ?? "") in store '\(root)'.")
        }
        let folders = Set(all.compactMap { $0.location?.sourceFolder })
        guard folders.count == 1 else {
            throw BackupError(
                .invalidArgument,
                "Source name '\(name)' is ambiguous in '\(root)': \(folders.sorted().joined(separator: ", ")); name the node with --origin or the kind with --kind."
            )
        }
        if let stamp {
            let wanted = stamp.replacingOccurrences(of: "/", with: "")
            guard let match = all.last(where: { $0.location!.stamp.replacingOccurrences(of: "/", with: "") == wanted })
            else {
                throw BackupError(
                    .notFound,
                    "Source '\(name)' has no artifact at stamp '\(stamp)'; it has: \(all.map { $0.location!.stamp }.joined(separator: ", "))."
                )
            }
            return match
        }
        for artifact in all.reversed() where artifact.hasSidecar {
            let dna = try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
            if (dna.regressions ?? []).isEmpty { return artifact }
        }
        return all.last!
    }

    /// Restores a source from its artifact into `target`.
    ///
    /// The artifact's DNA is verified first (digest and a full read-through), it is extracted
    /// safely into a scratch folder beside the target, checked by the kind's own tool
    /// (`svnadmin verify`, `git fsck`, SQLite `integrity_check`), restored, given `owner`
    /// (`USER:GROUP`), and only then moved into place. An existing target is refused unless
    /// `force`, which moves it aside to `<target>.before-recover-<stamp>`; nothing is deleted.
    public func recover(
        _ artifact: StoredArtifact, to target: String, force: Bool = false, owner: String? = nil,
        tools: SourceTools = SourceTools(), now: Date = Date()
    ) throws -> RecoverReport {
        guard let location = artifact.location, let kind = SourceKind(storeName: location.kind) else {
            throw BackupError(
                .invalidArgument, "'\(artifact.path)' is not in the store layout, so its kind is unknown.")
        }
        let verdict = verify(artifact, deep: true)
        guard verdict.status == .intact else {
            throw BackupError(
                .refused,
                "Refusing to recover from '\(artifact.path)': it is \(verdict.status.label) (\(describe(verdict.status))). Pick another artifact with --at."
            )
        }
        let target = Store.normalise(target)
        let parent = (target as NSString).deletingLastPathComponent
        guard let pst = try FileSystem.linkStatus(parent), (pst.st_mode & S_IFMT) == S_IFDIR else {
            throw BackupError(.invalidArgument, "The folder '\(parent)' to recover into does not exist.")
        }
        guard access(parent, W_OK) == 0 else {
            let reason = errno == EROFS ? "its file system is read-only" : "no permission to write there"
            throw BackupError(.refused, "Cannot recover into '\(parent)': \(reason).")
        }
        let exists = try FileSystem.linkStatus(target) != nil
        if exists && !force {
            throw BackupError(
                .refused,
                "'\(target)' already exists; recover refuses to replace it. Use --force to move it aside first.")
        }
        let ids = try owner.map(Store.parseOwner)
        let scratch = parent + "/.scm-backup-recover-\(location.source)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileSystem.makeDirectories(scratch)
        defer { _ = try? removeTree(scratch) }  // Scratch beside the target; a failed removal leaves only a dot-folder.
        _ = try ArchiveInspector.extract(artifact.path, to: scratch + "/x")
        let copy = try topFolder(of: scratch + "/x", expected: location.source)
        var spec = SourceSpec(kind: kind, name: location.source, path: target, tools: tools)
        spec.verifySnapshot = true
        try kind.handler.check(copy, spec: spec)
        let staged = scratch + "/restored"
        try kind.handler.restore(copy, to: staged, spec: spec)
        if let ids { try Store.chownTree(staged, uid: ids.0, gid: ids.1) }
        var aside: String?
        if exists {
            let stamp = ArtifactLocation.stamp(for: now).replacingOccurrences(of: "/", with: "")
            aside = "\(target).before-recover-\(stamp)"
            try FileSystem.rename(target, to: aside!)
        }
        try FileSystem.rename(staged, to: target)
        try FileSystem.syncDirectory(parent)
        return RecoverReport(
            artifact: artifact.path, kind: kind.rawValue, revision: location.revision, target: target, movedAside: aside
        )
    }

    /// The one top-level folder of an extracted artifact: `<source>/`, or for legacy tarballs
    /// the single folder they hold.
    func topFolder(of extracted: String, expected: String) throws -> String {
        if try FileSystem.linkStatus(extracted + "/" + expected) != nil { return extracted + "/" + expected }
        let entries = try FileSystem.entries(of: extracted)
        guard entries.count == 1 else {
            throw BackupError(
                .archiveCorrupt, "The artifact holds \(entries.count) top-level entries, not the folder '\(expected)'.")
        }
        return extracted + "/" + entries[0]
    }

    private func describe(_ status: VerifyStatus) -> String {
        switch status {
        case .intact: "intact"
        case .missingSidecar: "without a DNA sidecar"
        case .mutant(let r): r.joined(separator: "; ")
        case .invalidSidecar(let r), .unreadable(let r): r
        }
    }

    /// `USER:GROUP` (names or numbers) as ids.
    static func parseOwner(_ text: String) throws -> (uid_t, gid_t) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw BackupError(.invalidArgument, "The owner '\(text)' is not USER:GROUP.")
        }
        let uid: uid_t
        if let n = uid_t(parts[0]) {
            uid = n
        } else if let pw = getpwnam(parts[0]) {
            uid = pw.pointee.pw_uid
        } else {
            throw BackupError(.invalidArgument, "The user '\(parts[0])' of owner '\(text)' does not exist.")
        }
        let gid: gid_t
        if let n = gid_t(parts[1]) {
            gid = n
        } else if let gr = getgrnam(parts[1]) {
            gid = gr.pointee.gr_gid
        } else {
            throw BackupError(.invalidArgument, "The group '\(parts[1])' of owner '\(text)' does not exist.")
        }
        return (uid, gid)
    }

    /// Gives everything under `path` (not following symlinks) to `uid:gid`.
    static func chownTree(_ path: String, uid: uid_t, gid: gid_t) throws {
        guard lchown(path, uid, gid) == 0 else {
            throw BackupError.posix("change the owner of", path: path, errno: errno)
        }
        guard let st = try FileSystem.linkStatus(path), (st.st_mode & S_IFMT) == S_IFDIR else { return }
        for name in try FileSystem.entries(of: path) { try chownTree(path + "/" + name, uid: uid, gid: gid) }
    }
}
