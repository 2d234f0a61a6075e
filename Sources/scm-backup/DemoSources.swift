import BackupCore
import BackupFixtures
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The sample server and the damage the demo does to a copy of its store.
enum DemoSources {
    struct Paths {
        var svn: String
        var trac: String
        var git: String
        var sqlite: String
        var conf: String
    }

    /// Makes the server's sources with the real tools (the same fixtures the tests use).
    static func make(in server: String) throws -> Paths {
        let paths = Paths(
            svn: server + "/repos/env", trac: server + "/tracs/env", git: server + "/git/tools.git",
            sqlite: server + "/db/monitor.db", conf: server + "/apache-confdir")
        for folder in ["repos", "tracs", "git", "db", "apache-confdir"] {
            try FileManager.default.createDirectory(atPath: server + "/" + folder, withIntermediateDirectories: true)
        }
        try SourceFixtures.svnRepository(at: paths.svn, commits: 4)
        try SourceFixtures.tracEnvironment(at: paths.trac, repository: paths.svn)
        try SourceFixtures.gitRepository(at: paths.git)
        try SourceFixtures.sqliteDatabase(at: paths.sqlite, rows: 1000)
        try "alice:$apr1$8Jq1$wUQnKfS1mS0m6kgqW0xQ9/\nbob:$apr1$hT2k$2a6nq3zXbJ0s5WmJ6yq6v1\n".write(
            toFile: paths.conf + "/users.conf", atomically: true, encoding: .utf8)
        try "[groups]\ndevs = alice, bob\n\n[/]\n* = r\n@devs = rw\n".write(
            toFile: paths.conf + "/authz.conf", atomically: true, encoding: .utf8)
        chmod(paths.conf + "/users.conf", 0o600)
        return paths
    }

    /// Copies `store` to `to` the way a careless transfer would, collapsing every `last` link
    /// into a folder; then flips one byte of one artifact. Returns the damaged artifact's path.
    static func carelessCopy(store: String, to copy: String) throws -> String {
        let fm = FileManager.default
        try fm.copyItem(atPath: store, toPath: copy)
        let scan = try Store(root: copy).scan()
        var folders = Set<String>()
        for a in scan.artifacts { if let l = a.location { folders.insert(copy + "/" + l.sourceFolder) } }
        for folder in folders {
            let link = folder + "/last"
            let target = try fm.destinationOfSymbolicLink(atPath: link)
            try fm.removeItem(atPath: link)
            try fm.copyItem(atPath: folder + "/" + target, toPath: link)
        }
        let victim = scan.artifacts.first!.path
        let fd = try FileDescriptor.open(victim, O_RDWR)
        try withFileDescriptor(fd) { fd in
            var byte: UInt8 = 0
            let at = Int64(try fd.status().st_size / 2)
            guard pread(fd.rawValue, &byte, 1, off_t(at)) == 1 else {
                throw BackupError(.io, "Cannot read '\(victim)'.")
            }
            byte ^= 0x01
            try withUnsafeBytes(of: &byte) { try fd.write($0, at: at) }
        }
        return victim
    }
}
