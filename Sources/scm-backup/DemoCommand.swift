import ArgumentParser
import BackupCore
import BackupFixtures
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A local demonstration of one server node: every kind of source backed up, verified,
/// damaged in a copy, purged (dry run), lost and recovered.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a local demonstration: back up a server's sources, catch a mutant, recover a lost repository.",
        discussion: """
            Makes a Subversion repository with its Trac environment, a Git repository, an SQLite \
            database and an Apache config folder with the real tools, and runs the commands a user \
            would. Everything is written under --dir (a new temporary folder by default) and left \
            there to look at.
            """
    )

    @Option(help: "The folder to work in; it must be empty or absent.")
    var dir: String?

    func run() async throws {
        do { try await demo() } catch let exit as ExitCode { throw exit } catch {
            Printer(json: false).report(error)
            throw Exit.failure
        }
    }

    private func step(_ text: String) { print("\n== \(text)") }

    private func command(_ args: [String]) async throws {
        print("$ scm-backup \(args.joined(separator: " "))")
        var cmd = try SCMBackup.parseAsRoot(args)
        if var asyncCommand = cmd as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try cmd.run()
        }
    }

    /// Runs a command that must exit with `expected`.
    private func command(_ args: [String], expecting expected: ExitCode, because why: String) async throws {
        do {
            try await command(args)
        } catch let exit as ExitCode where exit == expected {
            print("(exit code \(expected.rawValue): \(why))")
            return
        }
        throw BackupError(
            .io,
            "The demo expected exit code \(expected.rawValue) (\(why)) from 'scm-backup \(args.joined(separator: " "))'."
        )
    }

    private func demo() async throws {
        let root = try workFolder()
        let store = root + "/store"
        let server = root + "/server"
        let trac = ["--trac-admin", SourceFixtures.tracAdmin]
        step(
            "1. A server node 'cms02' with a Subversion repository and its Trac environment, a Git repository, an SQLite database and an Apache config folder, under \(server)"
        )
        let sources = try DemoSources.make(in: server)
        print("made \(sources.svn), \(sources.trac), \(sources.git), \(sources.sqlite), \(sources.conf)")

        step("2. Back up every source; the Trac environment and its repository as one pair under svnadmin freeze")
        try await command(
            [
                "backup", "--store", store, "--node", "cms02", "--kind", "trac", "--name", "env", sources.trac,
                "--svn-repo", sources.svn,
            ] + trac)
        try await command([
            "backup", "--store", store, "--node", "cms02", "--kind", "git", "--name", "tools", sources.git,
        ])
        try await command([
            "backup", "--store", store, "--node", "cms02", "--kind", "sqlite", "--name", "monitor", sources.sqlite,
        ])
        try await command([
            "backup", "--store", store, "--node", "cms02", "--kind", "folder", "--name", "apache-confdir", sources.conf,
        ])

        step("3. A developer commits; the next night's backup gets the new revision")
        let revision = try SourceFixtures.svnCommit(sources.svn, file: "NEWS", text: "release 1.1\n")
        print("committed revision \(revision)")
        sleep(1)  // A new stamp second, so that the two nights are easy to tell apart.
        try await command(
            [
                "backup", "--store", store, "--node", "cms02", "--kind", "trac", "--name", "env", sources.trac,
                "--svn-repo", sources.svn,
            ] + trac)

        step("4. What the store holds")
        try await command(["ls", "--store", store])
        try await command(["du", "--store", store])

        step("5. Verify every artifact against its DNA, reading each archive through")
        try await command(["verify", "--store", store, "--deep"])

        step("6. A careless copy (like the legacy web transfers) collapses 'last' links and damages one byte")
        let copy = root + "/careless-copy"
        let damaged = try DemoSources.carelessCopy(store: store, to: copy)
        print("copied \(store) to \(copy); flipped one byte in \(damaged)")
        try await command(
            ["verify", "--store", copy], expecting: Exit.mutants, because: "the damaged artifact is a mutant")
        try await command(["lastlinks", "--store", copy])

        step("7. What a purge keeping one artifact per source would delete (a dry run)")
        try await command(["purge", "--store", store, "--keep-last", "1"])

        step("8. The server loses its repository and Trac environment; recover both, the repository first")
        try FileManager.default.removeItem(atPath: sources.svn)
        try FileManager.default.removeItem(atPath: sources.trac)
        try await command(["recover", "--store", store, "--name", "env", "--kind", "svn", "--to", sources.svn])
        try await command(
            ["recover", "--store", store, "--name", "env", "--kind", "trac", "--to", sources.trac] + trac)
        let youngest = try ToolRunner.run(Tool("svnlook"), ["youngest", sources.svn]).text.trimmingCharacters(
            in: .whitespacesAndNewlines)
        guard youngest == "\(revision)" else {
            throw BackupError(.io, "The recovered repository is at revision \(youngest), not \(revision).")
        }
        print(
            "the recovered repository is at revision \(youngest) and passed svnadmin verify; Trac was resynced with it")

        step("9. Someone breaks users.conf; compare with the backup and restore it")
        try "alice:$apr1$8Jq1$wUQnKfS1mS0m6kgqW0xQ9/\n".write(
            toFile: sources.conf + "/users.conf", atomically: true, encoding: .utf8)
        try await command([
            "recover-config", "--store", store, "--name", "apache-confdir", "--to", sources.conf, "--file",
            "users.conf", "--yes",
        ])

        print("\nDemo complete. Everything is under \(root).")
    }

    private func workFolder() throws -> String {
        if let dir {
            if FileManager.default.fileExists(atPath: dir), try !FileSystem.entries(of: dir).isEmpty {
                throw BackupError(.invalidArgument, "Demo folder '\(dir)' is not empty; give an empty or new folder.")
            }
            try FileSystem.makeDirectories(dir)
            return Store(root: dir).root
        }
        var template = Array("/tmp/scm-backup-demo.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw BackupError(.io, "Cannot create a temporary folder under /tmp: \(String(cString: strerror(errno))).")
        }
        return String(cString: made)
    }
}
