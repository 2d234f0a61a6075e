import ArgumentParser
import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Run a local demonstration: make sample sources, back them up, verify, catch a mutant, repair a collapsed last link.",
        discussion: "Everything is written under --dir (a new temporary folder by default) and left there to look at."
    )

    @Option(help: "The folder to work in; it must be empty or absent.")
    var dir: String?

    func run() throws {
        let printer = Printer(json: false)
        try printer.run { try demo() }
    }

    private func step(_ text: String) { print("\n== \(text)") }

    private func command(_ args: [String]) throws {
        print("$ scm-backup \(args.joined(separator: " "))")
        var cmd = try SCMBackup.parseAsRoot(args)
        try cmd.run()
    }

    private func demo() throws {
        let root: String
        if let dir {
            root = dir
            if FileManager.default.fileExists(atPath: root), try !FileSystem.entries(of: root).isEmpty {
                throw BackupError(.invalidArgument, "Demo folder '\(root)' is not empty; give an empty or new folder.")
            }
            try FileSystem.makeDirectories(root)
        } else {
            var template = Array("/tmp/scm-backup-demo.XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw BackupError(
                    .io, "Cannot create a temporary folder under /tmp: \(String(cString: strerror(errno))).")
            }
            root = String(cString: made)
        }
        let store = root + "/store"
        step("1. Sample sources of a server node 'demo-server' under \(root)/server")
        let config = root + "/server/apache-confdir"
        let project = root + "/server/projects"
        try DemoSources.make(config: config, project: project)
        print(
            "made \(config) (users.conf, authz.conf) and \(project) (files, folders, a symlink, a hard link, a long path)"
        )

        step("2. Back up both; a new store folder gets its marker on first use")
        try command([
            "backup", "--store", store, "--node", "demo-server", "--kind", "folder", "--name", "apache-confdir", config,
        ])
        try command([
            "backup", "--store", store, "--node", "demo-server", "--kind", "folder", "--name", "projects", project,
        ])

        step("3. A user is added; the next backup of the config gets a new revision")
        let users = config + "/users.conf"
        try (String(contentsOfFile: users, encoding: .utf8) + "carol:$apr1$Qm3n$XgXvZ1oRr8bX0bq2rZ3m1.\n").write(
            toFile: users, atomically: true, encoding: .utf8)
        sleep(1)  // A new stamp second, so that the two artifacts have distinct stamps for the eye.
        try command([
            "backup", "--store", store, "--node", "demo-server", "--kind", "folder", "--name", "apache-confdir", config,
        ])

        step("4. What the store holds")
        try command(["ls", "--store", store])
        try command(["du", "--store", store])

        step("5. Verify every artifact against its DNA")
        try command(["verify", "--store", store, "--deep"])

        step("6. A careless copy (like the legacy web transfers) collapses 'last' links and damages one byte")
        let copy = root + "/careless-copy"
        let damaged = try DemoSources.carelessCopy(store: store, to: copy)
        print("copied \(store) to \(copy); flipped one byte in \(damaged)")

        step("7. Verify the copy: the damaged artifact is reported as a mutant (exit code 4)")
        do {
            try command(["verify", "--store", copy])
            throw BackupError(.io, "The demo expected the damaged copy to be reported as a mutant, and it was not.")
        } catch let exit as ExitCode where exit == Exit.mutants {
            print("(verify exited with 4: mutants found, as expected)")
        }

        step("8. Repair the collapsed 'last' links of the copy")
        try command(["lastlinks", "--store", copy])

        step("9. Restore the newest 'projects' artifact with plain extraction and compare")
        let restore = root + "/restore"
        let newest = try Store(root: store).scan().artifacts.filter { $0.location?.source == "projects" }.last!
        try command(["archive", "extract", newest.path, "--to", restore])
        let differences = try DemoSources.compare(project, restore + "/projects")
        guard differences.isEmpty else {
            throw BackupError(.io, "The restored tree differs from the source: \(differences.joined(separator: "; ")).")
        }
        print("the restored tree equals \(project): same files, bytes, modes, links and times")
        print("\nDemo complete. Everything is under \(root).")
    }
}
