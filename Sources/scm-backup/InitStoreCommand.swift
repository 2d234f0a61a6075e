import ArgumentParser
import BackupCore

struct InitStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-store",
        abstract:
            "Give a folder its store marker, adopting an existing (e.g. legacy) tree so that backups may write to it."
    )

    @Option(help: "The store folder.")
    var store: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            let marker = try store.adopt()
            if output.json {
                try printer.printJSON(marker)
            } else {
                print("store \(store.root) has id \(marker.id)")
            }
        }
    }
}
