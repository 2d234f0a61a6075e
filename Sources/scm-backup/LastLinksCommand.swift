import ArgumentParser
import BackupCore

struct LastLinksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lastlinks",
        abstract:
            "Point every source's 'last' link at its newest artifact, repairing links that a copy collapsed into folders.",
        discussion: """
            A collapsed 'last' folder is removed only when each file in it is byte-identical to the \
            same file in a stamp folder; otherwise it is moved aside as last.collapsed-<stamp>.
            """
    )

    @Option(help: "The store folder.")
    var store: String
    @Flag(name: .customLong("dry-run"), help: "Show what would change without changing anything.")
    var dryRun = false
    @OptionGroup var output: OutputOptions

    struct Item: Encodable {
        var sourceFolder: String
        var stamp: String
        var problem: String
        var keptAside: String?
    }

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let repairs = try Store(root: store).repairLastLinks(dryRun: dryRun)
            if output.json {
                try printer.printJSON(
                    repairs.map {
                        Item(
                            sourceFolder: $0.sourceFolder, stamp: $0.stamp, problem: $0.problem, keptAside: $0.keptAside
                        )
                    })
                return
            }
            for r in repairs {
                let verb = dryRun ? "would point" : "pointed"
                print("\(r.sourceFolder)/last: \(r.problem); \(verb) it at \(r.stamp)")
                if let aside = r.keptAside { print("  the collapsed folder held other files; kept as \(aside)") }
            }
            if repairs.isEmpty { print("every last link is right") }
        }
    }
}
