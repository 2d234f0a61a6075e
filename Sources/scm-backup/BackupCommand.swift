import ArgumentParser
import BackupCore
import Foundation

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up one source into the store as a verified .tar.gz artifact with its DNA sidecar.",
        discussion: """
            The artifact appears under <store>/<node>/<kind>/<name>/YYYY/MM/DD/HHMMSS/ only once it \
            is complete, fsynced and read back against its DNA; <name>/last then points to it.
            """
    )

    @Option(help: "The store folder. A new or empty folder gets a store marker on first use.")
    var store: String
    @Option(help: "The name of the node the source lives on (the origin).")
    var node: String
    @Option(help: "The kind of source. Supported now: folder.")
    var kind: String
    @Option(help: "The source's name in the store.")
    var name: String
    @Argument(help: "The source's path.")
    var path: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            guard let kind = SourceKind(rawValue: kind) else {
                throw BackupError(
                    .invalidArgument,
                    "Unknown kind '\(kind)': use one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            guard kind == .folder else {
                throw BackupError(
                    .invalidArgument,
                    "Kind '\(kind.rawValue)' cannot be backed up by this version yet; only 'folder' can.")
            }
            let store = try Store.openForWriting(store)
            let published = try store.backupFolder(path, node: node, name: name)
            if output.json {
                struct Out: Encodable {
                    var path: String
                    var dna: DNA
                    var warnings: [String]
                }
                try printer.printJSON(Out(path: published.path, dna: published.dna, warnings: published.warnings))
            } else {
                print("backed up \(path) as \(published.path)")
                print(
                    "  size \(formatBytes(published.dna.size)), revision \(published.dna.revision ?? "-"), sha256 \(published.dna.sha256 ?? "-")"
                )
                for warning in published.warnings { print("  warning: \(warning)") }
            }
        }
    }
}
