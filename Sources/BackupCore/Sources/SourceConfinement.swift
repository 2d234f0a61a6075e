import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Keeps a source inside the folders a node allows (`source_roots`), judged on the file
/// system as it is, not on the text of a path: symbolic links anywhere in the path are
/// resolved first, and the parts of a repository that could point elsewhere (a git
/// repository's alternates, an svn repository's `db` and `format`, a Trac environment's
/// repository) must resolve inside too.
public struct SourceConfinement: Sendable {
    /// The allowed folders, resolved.
    public let roots: [String]

    /// Resolves each root; a root that does not exist allows nothing.
    public init(roots: [String]) {
        self.roots = roots.compactMap { SourceConfinement.resolve($0) }
    }

    /// The real path of `path` (every link resolved), or nil when it does not exist.
    public static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether the resolved `path` lies in one of the roots.
    public func contains(resolved path: String) -> Bool { Self.lies(path, in: roots) }

    /// Whether `path` is one of `roots` or lies under one, compared as written.
    public static func lies(_ path: String, in roots: [String]) -> Bool {
        roots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") }
    }

    /// Checks a source of `kind` named `name` at `path`; returns its resolved path, or throws
    /// `refused` naming the file that leads outside.
    public func check(_ name: String, kind: SourceKind, path: String, sqlite3: Tool = Tool("sqlite3")) throws
        -> String
    {
        guard let resolved = Self.resolve(path) else {
            throw BackupError(.sourceInvalid, "Source '\(name)' at '\(path)' does not exist.")
        }
        guard contains(resolved: resolved) else {
            throw BackupError(
                .refused,
                "Source '\(name)' at '\(path)' resolves to '\(resolved)', outside this node's source_roots (\(roots.joined(separator: ", "))); it is refused."
            )
        }
        switch kind {
        case .git:
            for alternates in ["objects/info/alternates", ".git/objects/info/alternates"]
            where try FileSystem.linkStatus(resolved + "/" + alternates) != nil {
                throw BackupError(
                    .refused,
                    "Git source '\(name)' has '\(resolved)/\(alternates)': it borrows objects from another repository, which this node does not back up; it is refused."
                )
            }
            try inside(resolved + "/.git", of: resolved, name: name, optional: true)
        case .svn:
            for part in ["db", "format"] {
                try inside(resolved + "/" + part, of: resolved, name: name, optional: true)
            }
        case .trac:
            for repository in try Self.tracRepositories(resolved, sqlite3: sqlite3) {
                let full = repository.hasPrefix("/") ? repository : resolved + "/" + repository
                guard let real = Self.resolve(full) else { continue }  // Trac itself will complain.
                guard contains(resolved: real) else {
                    throw BackupError(
                        .refused,
                        "Trac source '\(name)' names repository '\(repository)' (in its conf/trac.ini or db/trac.db), which resolves to '\(real)', outside this node's source_roots; it is refused."
                    )
                }
            }
        case .folder, .sqlite:
            break
        }
        return resolved
    }

    /// `part` of a source must resolve inside the source itself.
    private func inside(_ part: String, of source: String, name: String, optional: Bool) throws {
        guard let real = Self.resolve(part) else {
            if optional { return }
            throw BackupError(.sourceInvalid, "Source '\(name)' lacks '\(part)'.")
        }
        guard real == source || real.hasPrefix(source + "/") else {
            throw BackupError(
                .refused,
                "Source '\(name)': '\(part)' resolves to '\(real)', outside the source itself; it is refused.")
        }
    }

    /// The repository folders a Trac environment names: `repository_dir` of `[trac]` and every
    /// `*.dir` of `[repositories]` in `conf/trac.ini`, and every `dir` of the `repository`
    /// table of `db/trac.db` (where `trac-admin repository add` puts them).
    static func tracRepositories(_ environment: String, sqlite3: Tool) throws -> [String] {
        var found: [String] = []
        let db = environment + "/db/trac.db"
        if try FileSystem.linkStatus(db) != nil {
            let tables = try ToolRunner.run(
                sqlite3, ["-readonly", db, "SELECT count(*) FROM sqlite_master WHERE name = 'repository';"])
            if tables.text.trimmingCharacters(in: .whitespacesAndNewlines) != "0" {
                let rows = try ToolRunner.run(
                    sqlite3, ["-readonly", db, "SELECT value FROM repository WHERE name = 'dir';"])
                found += rows.text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
            }
        }
        let ini = environment + "/conf/trac.ini"
        guard try FileSystem.linkStatus(ini) != nil else { return found }
        let text = String(decoding: try FileSystem.readSmallFile(ini), as: UTF8.self)
        var section = ""
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast()).lowercased()
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { continue }
            if (section == "trac" && key == "repository_dir") || (section == "repositories" && key.hasSuffix(".dir")) {
                found.append(value)
            }
        }
        return found
    }
}
