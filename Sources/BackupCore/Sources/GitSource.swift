import Crypto
import Foundation

/// A Git repository (bare or with a work tree), snapshotted consistently while it is live:
/// `git bundle create --all` (one atomic read of all refs and their objects) plus the
/// repository's `config`, `HEAD`, `description`, `hooks/` and `info/`.
///
/// The revision is the first 12 hex digits of the SHA-256 of the bundle's sorted ref list, so
/// two snapshots with the same refs have the same revision. A repository without refs is
/// recorded as revision `empty` with no bundle.
public struct GitSource: SourceHandler {
    public var kind: SourceKind { .git }
    public init() {}

    static let bundleName = "repo.bundle"
    static let metadata = ["config", "HEAD", "description", "hooks", "info"]

    public func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot {
        let gitDir = try gitDirectory(of: spec)
        try FileSystem.makeDirectories(destination)
        let refs = try ToolRunner.run(spec.tools.git, ["--git-dir", gitDir, "for-each-ref", "--count=1"]).text
        var revision = "empty"
        if !refs.isEmpty {
            let bundle = destination + "/" + GitSource.bundleName
            try ToolRunner.run(spec.tools.git, ["--git-dir", gitDir, "bundle", "create", "--quiet", bundle, "--all"])
            revision = try Self.revision(ofBundle: bundle, spec: spec)
        }
        for name in GitSource.metadata where try FileSystem.linkStatus(gitDir + "/" + name) != nil {
            do { try FileManager.default.copyItem(atPath: gitDir + "/" + name, toPath: destination + "/" + name) } catch
            {
                throw BackupError(
                    .io, "Cannot copy '\(gitDir)/\(name)' of source '\(spec.name)': \(error.localizedDescription)")
            }
        }
        try check(destination, spec: spec)
        return Snapshot(revision: revision, identity: nil)
    }

    /// The short id of a bundle's refs.
    static func revision(ofBundle bundle: String, spec: SourceSpec) throws -> String {
        let heads = try ToolRunner.run(spec.tools.git, ["bundle", "list-heads", bundle]).text
        let sorted = heads.split(separator: "\n").sorted().joined(separator: "\n")
        return SHA256.hash(data: Data(sorted.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    public func check(_ copy: String, spec: SourceSpec) throws {
        let bundle = copy + "/" + GitSource.bundleName
        guard try FileSystem.linkStatus(bundle) != nil else {
            guard try FileSystem.linkStatus(copy + "/HEAD") != nil else {
                throw BackupError(.archiveCorrupt, "The artifact of '\(spec.name)' holds neither a bundle nor a HEAD.")
            }
            return  // An empty repository: nothing to verify.
        }
        // `git bundle verify` needs a repository to run in; a scratch one beside the copy.
        let scratch = copy + ".verify"
        try removeTree(scratch)
        // Best effort: the scratch folder lives in the recovery's own scratch space.
        defer { _ = try? removeTree(scratch) }
        try ToolRunner.run(spec.tools.git, ["init", "--quiet", "--bare", scratch])
        try ToolRunner.run(spec.tools.git, ["--git-dir", scratch, "bundle", "verify", "--quiet", bundle])
    }

    public func restore(_ copy: String, to target: String, spec: SourceSpec) throws {
        let bundle = copy + "/" + GitSource.bundleName
        if try FileSystem.linkStatus(bundle) != nil {
            try ToolRunner.run(spec.tools.git, ["clone", "--quiet", "--mirror", bundle, target])
            try ToolRunner.run(spec.tools.git, ["--git-dir", target, "remote", "remove", "origin"])
        } else {
            try ToolRunner.run(spec.tools.git, ["init", "--quiet", "--bare", target])
        }
        for name in GitSource.metadata where try FileSystem.linkStatus(copy + "/" + name) != nil {
            try removeTree(target + "/" + name)
            try FileSystem.rename(copy + "/" + name, to: target + "/" + name)
        }
        try ToolRunner.run(spec.tools.git, ["--git-dir", target, "fsck", "--full", "--no-progress"])
    }

    /// The repository's git folder: the path itself for a bare repository, else its `.git`.
    private func gitDirectory(of spec: SourceSpec) throws -> String {
        guard try FileSystem.linkStatus(spec.path) != nil else {
            throw BackupError(.sourceInvalid, "Git repository '\(spec.path)' of source '\(spec.name)' does not exist.")
        }
        let probe = try ToolRunner.run(
            spec.tools.git, ["-C", spec.path, "rev-parse", "--absolute-git-dir"], allowFailure: true)
        guard probe.status == 0 else {
            throw BackupError(
                .sourceInvalid,
                "'\(spec.path)' (source '\(spec.name)') is not a Git repository: \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        let gitDir = probe.text.trimmingCharacters(in: .whitespacesAndNewlines)
        // A folder inside some other repository's work tree is not that repository.
        let path = FileSystem.realPath(spec.path) ?? spec.path
        guard gitDir == path || gitDir == path + "/.git" else {
            throw BackupError(
                .sourceInvalid,
                "'\(spec.path)' (source '\(spec.name)') is not a Git repository; it lies inside '\(gitDir)'.")
        }
        return gitDir
    }
}
