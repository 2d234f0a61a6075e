import ArgumentParser
import BackupCore

struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Restore a source from its artifact: verified, checked by its own tool, then moved into place.",
        discussion: """
            The newest artifact not flagged as a regression is used unless --at names a stamp. An \
            svn repository must pass svnadmin verify, a git repository git fsck, a Trac database \
            its integrity check (and its repositories are resynced), before it replaces anything. \
            An existing target is refused unless --force, which moves it aside, never deletes it.
            """
    )

    @Option(help: "The store folder.")
    var store: String
    @Option(help: "The source's name.")
    var name: String
    @Option(help: "The origin node, when several nodes have a source of that name.")
    var origin: String?
    @Option(
        help: "The source's kind, when sources of several kinds have that name (a Trac environment and its repository)."
    )
    var kind: String?
    @Option(help: "The artifact's stamp, YYYY/MM/DD/HHMMSS or YYYYMMDDHHMMSS. The default is the newest good one.")
    var at: String?
    @Option(help: "Where the source goes: a repository or environment folder, or a database file path.")
    var to: String
    @Flag(help: "Move an existing target aside to <target>.before-recover-<stamp> and replace it.")
    var force = false
    @Option(help: "USER:GROUP to own the recovered files (names or numbers).")
    var owner: String?
    @OptionGroup var tools: ToolOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            let artifact = try store.findArtifact(name: name, origin: origin, kind: kind, at: at)
            let report = try store.recover(artifact, to: to, force: force, owner: owner, tools: try tools.tools())
            if output.json {
                try printer.printJSON(report)
            } else {
                print(
                    "recovered \(report.kind) source '\(name)' revision \(report.revision ?? "-") from \(report.artifact)"
                )
                print("  into \(report.target)")
                if let aside = report.movedAside { print("  the previous \(report.target) was moved to \(aside)") }
            }
        }
    }
}
