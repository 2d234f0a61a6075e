import Foundation

/// One configuration file as it is live and as the backup has it.
public struct ConfigChange: Sendable {
    public enum State: String, Sendable { case identical, changed, missingLive = "new" }
    /// The file's path relative to the live folder.
    public var name: String
    /// The live file.
    public var live: String
    /// The file as extracted from the backup (in a scratch folder).
    public var backup: String
    public var state: State
    /// `diff -u live backup`; empty when identical.
    public var diff: String
    /// SHA-256 of the live file (nil when missing) and of the backup's, as compared.
    public var liveSha256: String?
    public var backupSha256: String
}

extension Store {
    /// Extracts the newest good artifact of folder source `name` (or the one at `stamp`) into
    /// a scratch folder, compares each of its regular files with the same file under `liveFolder`
    /// and hands the comparisons to `body`, which decides what to `applyConfigChange`. The
    /// scratch folder is removed afterwards. Nothing is written to logs: the diffs hold secrets
    /// (password hashes) and are only handed to `body`.
    public func withConfigChanges<T>(
        name: String, origin: String? = nil, at stamp: String? = nil, liveFolder: String, only: [String]? = nil,
        _ body: (StoredArtifact, [ConfigChange]) throws -> T
    ) throws -> T {
        let artifact = try findArtifact(name: name, origin: origin, at: stamp)
        let verdict = verify(artifact, deep: true)
        guard verdict.status == .intact else {
            throw BackupError(.refused, "Refusing to recover from '\(artifact.path)': it is \(verdict.status.label).")
        }
        let live = Store.normalise(liveFolder)
        // A live folder that is gone has every file of the backup missing; its parent must be there.
        if let st = try FileSystem.linkStatus(live) {
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw BackupError(.invalidArgument, "The live folder '\(live)' is not a folder.")
            }
        } else if try FileSystem.linkStatus((live as NSString).deletingLastPathComponent) == nil {
            throw BackupError(.invalidArgument, "The live folder '\(live)' and its parent do not exist.")
        }
        let scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "scm-backup-config-\(UUID().uuidString.prefix(8).lowercased())")
        try FileSystem.makeDirectories(scratch)
        defer { _ = try? removeTree(scratch) }  // 0700 scratch folder; a failed removal leaves it private.
        _ = try ArchiveInspector.extract(artifact.path, to: scratch)
        let top = try topFolder(of: scratch, expected: artifact.location?.source ?? name)
        var changes: [ConfigChange] = []
        guard let walker = FileManager.default.enumerator(atPath: top) else {
            throw BackupError(.io, "Cannot list the extracted artifact in '\(top)'.")
        }
        let wanted = only.map(Set.init)
        while let rel = walker.nextObject() as? String {
            let file = top + "/" + rel
            guard let fst = try FileSystem.linkStatus(file), (fst.st_mode & S_IFMT) == S_IFREG else { continue }
            if let wanted, !wanted.contains(rel) { continue }
            let livePath = live + "/" + rel
            var change = ConfigChange(
                name: rel, live: livePath, backup: file, state: .identical, diff: "", liveSha256: nil,
                backupSha256: try Self.sha256(of: file))
            if try FileSystem.linkStatus(livePath) == nil {
                change.state = .missingLive
                change.diff = try ToolRunner.run(Tool("diff"), ["-u", "/dev/null", file], allowFailure: true).text
            } else {
                let diff = try ToolRunner.run(Tool("diff"), ["-u", livePath, file], allowFailure: true)
                guard diff.status <= 1 else {
                    throw BackupError(.toolFailed, "'diff -u \(livePath) …' failed: \(diff.stderr)")
                }
                if diff.status == 1 {
                    change.state = .changed
                    change.diff = diff.text
                }
                change.liveSha256 = try Self.sha256(of: livePath)
            }
            changes.append(change)
        }
        if let wanted {
            let missing = wanted.subtracting(changes.map(\.name))
            guard missing.isEmpty else {
                throw BackupError(
                    .notFound,
                    "The artifact '\(artifact.path)' holds no file \(missing.sorted().joined(separator: ", ")).")
            }
        }
        return try body(artifact, changes)
    }

    /// Replaces the live file with the backup's, atomically, with the backup's mode; the live
    /// file is first copied to `<file>.before-recover-<stamp>`. Returns that copy's path.
    @discardableResult
    public func applyConfigChange(_ change: ConfigChange, now: Date = Date()) throws -> String? {
        guard change.state != .identical else { return nil }
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: change.backup)))
        let mode = try Self.mode(of: change.backup, "the backup's copy")
        var saved: String?
        if change.state == .changed {
            let stamp = ArtifactLocation.stamp(for: now).replacingOccurrences(of: "/", with: "")
            let copy = change.live + ".before-recover-" + stamp
            let liveMode = try Self.mode(of: change.live, "the live file")
            try FileSystem.writeAtomically(
                Array(try Data(contentsOf: URL(fileURLWithPath: change.live))), to: copy, mode: liveMode)
            saved = copy
        } else {
            try FileSystem.makeDirectories((change.live as NSString).deletingLastPathComponent, mode: 0o755)
        }
        try FileSystem.writeAtomically(bytes, to: change.live, mode: mode)
        return saved
    }

    /// Replaces exactly the files `wanted` names, each only if its live file and the backup's
    /// are still what was compared before (the SHA-256 of each, a live file that was missing
    /// still missing); any that is not is refused before a file is changed. A file now
    /// identical is left alone. Returns, per file replaced, the copy kept of the previous one.
    public func applyConfigChanges(
        _ changes: [ConfigChange], wanted: [(name: String, liveSha256: String?, backupSha256: String)],
        now: Date = Date()
    ) throws -> [(name: String, kept: String?)] {
        var byName: [String: ConfigChange] = [:]
        for change in changes { byName[change.name] = change }
        var todo: [ConfigChange] = []
        for file in wanted {
            guard let change = byName[file.name] else {
                throw BackupError(.notFound, "The backup holds no file '\(file.name)'; nothing was replaced.")
            }
            guard change.backupSha256 == file.backupSha256 else {
                throw BackupError(
                    .refused,
                    "The backup's '\(file.name)' is not the one compared before; nothing was replaced. Compare again.")
            }
            guard change.liveSha256 == file.liveSha256 || change.state == .identical else {
                throw BackupError(
                    .refused,
                    "'\(change.live)' changed since it was compared\(file.liveSha256 == nil ? " (it was missing)" : ""); nothing was replaced. Compare again."
                )
            }
            if change.state != .identical { todo.append(change) }
        }
        var done: [(name: String, kept: String?)] = []
        for change in todo {
            do { done.append((change.name, try applyConfigChange(change, now: now))) } catch let error as BackupError {
                // Said with what is replaced already, so that nobody takes the folder for untouched.
                throw BackupError(
                    error.code,
                    error.message
                        + (done.isEmpty
                            ? " Nothing was replaced."
                            : " Replaced before it: \(done.map(\.name).joined(separator: ", ")) (each previous file kept beside it).")
                )
            }
        }
        return done
    }

    /// The SHA-256 of a (configuration) file (``Store/digest(_:_:)``).
    static func sha256(of path: String) throws -> String {
        guard let hex = try digest(path, .sha256).sha256 else {
            throw BackupError(.io, "No SHA-256 was computed for '\(path)'.")
        }
        return hex
    }

    /// The permission bits of `path`; a file removed since the comparison is named, not a crash.
    private static func mode(of path: String, _ what: String) throws -> mode_t {
        guard let status = try FileSystem.linkStatus(path) else {
            throw BackupError(
                .notFound,
                "Cannot recover over '\(path)': \(what) vanished after the comparison; nothing was changed for it. Run the recovery again."
            )
        }
        return status.st_mode & 0o7777
    }
}
