import ArgumentParser
import BackupCore
import Foundation

/// `scm-backup trash --store PATH`: what purges moved to the store's trash, restored or freed.
struct TrashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trash",
        abstract: "List, restore or empty what purges moved to a store's trash.",
        discussion: """
            A purge order moves what it deletes to <store>/.trash for the agent's trash_hours \
            (24 by default) before the bytes are freed; each purge frees the batches older than \
            that. --restore puts a copy back where it was (the next inventory reports it to the \
            catalog); --empty frees batches now, those older than --older-than (default: all).
            """)
    @Option(help: "The store folder.") var store: String
    @Option(help: "Put back this store-relative artifact path.") var restore: String?
    @Flag(help: "Free the trash's batches now.") var empty = false
    @Option(name: .customLong("older-than"), help: "With --empty: only batches deleted longer ago, e.g. 2h.")
    var olderThan: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if restore != nil && empty { throw ValidationError("Give --restore or --empty, not both.") }
        if olderThan != nil && !empty { throw ValidationError("--older-than goes with --empty.") }
    }

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            if let restore {
                let artifact = try store.restoreFromTrash(restore)
                if output.json { return try printer.printJSON(["restored": artifact.path]) }
                print("restored \(artifact.path)")
                return
            }
            if empty {
                let age = try olderThan.map(RetentionPolicy.parseDuration) ?? 0
                let gone = try store.emptyTrash(olderThan: age)
                if output.json { return try printer.printJSON(gone) }
                print("freed \(gone.count) copies, \(formatBytes(gone.map(\.size).reduce(0, +)))")
                return
            }
            let entries = try store.trashEntries()
            if output.json { return try printer.printJSON(entries) }
            for e in entries { print("\(e.path)  \(formatBytes(e.size))  deleted \(e.deletedAt.formatted(.iso8601))") }
            print("\(entries.count) copies in the trash, \(formatBytes(try store.trashBytes()))")
        }
    }
}
