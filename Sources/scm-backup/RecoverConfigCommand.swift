import ArgumentParser
import BackupCore
import Foundation

struct RecoverConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover-config",
        abstract:
            "Compare config files (users.conf, authz.conf) with a backup and replace each only after confirmation.",
        discussion: """
            Shows a unified diff of each live file against the backup's and asks before replacing \
            it; the live file is kept as <file>.before-recover-<stamp>. Diffs go to the terminal \
            only, never to logs. Exit 3 when some changed files were left as they are.
            """
    )

    @Option(help: "The store folder.")
    var store: String
    @Option(help: "The folder source's name (e.g. apache-confdir).")
    var name: String
    @Option(help: "The origin node, when several nodes have a source of that name.")
    var origin: String?
    @Option(help: "The artifact's stamp. The default is the newest good one.")
    var at: String?
    @Option(help: "The live folder holding the files.")
    var to: String
    @Option(
        name: .customLong("file"), help: "Only this file, relative to the folder (repeatable), e.g. --file users.conf.")
    var files: [String] = []
    @Flag(help: "Replace changed files without asking.")
    var yes = false

    func run() throws {
        let printer = Printer(json: false)
        var leftAlone = 0
        try printer.run {
            let store = Store(root: store)
            try store.withConfigChanges(
                name: name, origin: origin, at: at, liveFolder: to, only: files.isEmpty ? nil : files
            ) {
                artifact, changes in
                print("comparing \(to) with \(artifact.path)")
                for change in changes {
                    guard change.state != .identical else {
                        print("\(change.name): unchanged")
                        continue
                    }
                    print(
                        "\(change.name): \(change.state == .changed ? "differs from the backup" : "missing; the backup has it")"
                    )
                    print(change.diff, terminator: change.diff.hasSuffix("\n") ? "" : "\n")
                    var replace = yes
                    if !yes {
                        print("Replace \(change.live) with the backup's version? [y/N] ", terminator: "")
                        replace = ["y", "yes"].contains(readLine()?.lowercased() ?? "")
                    }
                    if replace {
                        let saved = try store.applyConfigChange(change)
                        print("  replaced\(saved.map { "; the previous file is kept as \($0)" } ?? "")")
                    } else {
                        print("  left as it is")
                        leftAlone += 1
                    }
                }
            }
        }
        if leftAlone > 0 { throw Exit.partial }
    }
}
