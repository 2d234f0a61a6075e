import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Real repositories, environments and databases for tests, made with the real tools.
public enum SourceFixtures {
    /// trac-admin for the system Python with Subversion bindings (ops/setup.sh puts it here),
    /// else the one on PATH.
    public static var tracAdmin: String {
        FileManager.default.isExecutableFile(atPath: "/usr/local/bin/trac-admin")
            ? "/usr/local/bin/trac-admin" : "trac-admin"
    }

    /// Tools as the tests use them.
    public static var tools: SourceTools {
        var tools = SourceTools()
        tools.tracAdmin.program = tracAdmin
        return tools
    }

    @discardableResult
    static func run(_ program: String, _ args: [String], in dir: String? = nil) throws -> String {
        let r = try Command.run(program, args, in: dir)
        guard r.status == 0 else {
            throw BackupError(
                .toolFailed, "fixture: '\(([program] + args).joined(separator: " "))' failed: \(r.stderr)")
        }
        return r.stdout
    }

    /// A Subversion repository at `path` with `commits` revisions of a few files.
    public static func svnRepository(at path: String, commits: Int = 3) throws {
        try run("svnadmin", ["create", path])
        let wc = path + ".wc"
        try run("svn", ["checkout", "-q", "file://" + path, wc])
        for i in 1...max(commits, 1) where commits > 0 {
            try "revision \(i)\n".write(toFile: wc + "/file\(i % 3).txt", atomically: true, encoding: .utf8)
            try run("svn", ["add", "-q", "--force", "."], in: wc)
            try run("svn", ["commit", "-q", "-m", "commit \(i)"], in: wc)
        }
        try FileManager.default.removeItem(atPath: wc)
    }

    /// Commits one more revision to the repository at `path`; returns the new youngest revision.
    @discardableResult
    public static func svnCommit(_ path: String, file: String = "more.txt", text: String = "more\n") throws -> Int {
        let url = "file://" + path
        let local = (NSTemporaryDirectory() as NSString).appendingPathComponent("svnmucc-\(UUID().uuidString)")
        try text.write(toFile: local, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: local) }  // A temporary file; leaving it is harmless.
        try run("svnmucc", ["-m", "more", "put", local, url + "/" + file])
        return Int(try run("svnlook", ["youngest", path]).trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    /// A bare Git repository at `path` with two branches, a tag and a few commits.
    public static func gitRepository(at path: String) throws {
        try run("git", ["init", "-q", "--bare", "-b", "main", path])
        let wc = path + ".wc"
        try run("git", ["clone", "-q", path, wc])
        let id = ["-c", "user.email=test@example.org", "-c", "user.name=Test"]
        for i in 1...3 {
            try "line \(i)\n".write(toFile: wc + "/file.txt", atomically: true, encoding: .utf8)
            try run("git", ["-C", wc, "add", "file.txt"])
            try run("git", ["-C", wc] + id + ["commit", "-q", "-m", "commit \(i)"])
        }
        try run("git", ["-C", wc, "tag", "v1.0"])
        try run("git", ["-C", wc, "checkout", "-q", "-b", "feature"])
        try "feature\n".write(toFile: wc + "/feature.txt", atomically: true, encoding: .utf8)
        try run("git", ["-C", wc, "add", "feature.txt"])
        try run("git", ["-C", wc] + id + ["commit", "-q", "-m", "feature"])
        try run("git", ["-C", wc, "push", "-q", "origin", "main", "feature", "v1.0"])
        try FileManager.default.removeItem(atPath: wc)
        try "#!/bin/sh\nexit 0\n".write(toFile: path + "/hooks/post-receive", atomically: true, encoding: .utf8)
        chmod(path + "/hooks/post-receive", 0o755)
        try run("git", ["--git-dir", path, "config", "receive.denyNonFastForwards", "true"])
    }

    /// All refs of a repository as "object ref" lines.
    public static func gitRefs(_ gitDir: String) throws -> String {
        try run("git", ["--git-dir", gitDir, "for-each-ref", "--format=%(objectname) %(refname)"])
    }

    /// A Trac environment at `path` with a wiki page, the svn component enabled and, when given,
    /// `repository` linked as its default repository.
    public static func tracEnvironment(at path: String, repository: String? = nil) throws {
        try run(tracAdmin, [path, "initenv", "Test Project", "sqlite:db/trac.db"])
        let ini = path + "/conf/trac.ini"
        var text = try String(contentsOfFile: ini, encoding: .utf8)
        text += "\n[components]\ntracopt.versioncontrol.svn.* = enabled\n"
        try text.write(toFile: ini, atomically: true, encoding: .utf8)
        let page = (NSTemporaryDirectory() as NSString).appendingPathComponent("wiki-\(UUID().uuidString)")
        try "= Backup test page =\nThis page must survive a backup.\n".write(
            toFile: page, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: page) }  // A temporary file; leaving it is harmless.
        try run(tracAdmin, [path, "wiki", "import", "BackupTest", page])
        if let repository {
            try run(tracAdmin, [path, "repository", "add", "(default)", repository, "svn"])
            try run(tracAdmin, [path, "repository", "resync", "*"])
        }
    }

    /// An SQLite database at `path` with one table of `rows` rows.
    public static func sqliteDatabase(at path: String, rows: Int = 100) throws {
        var sql = "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
        sql += (0..<rows).map { "INSERT INTO t (v) VALUES ('row \($0)');" }.joined()
        try run("sqlite3", [path, sql])
    }

    /// The result of an SQL query on a database.
    public static func sqlite(_ path: String, _ sql: String) throws -> String {
        try run("sqlite3", [path, sql])
    }
}
