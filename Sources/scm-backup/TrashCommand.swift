import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup trash --store PATH` or `--node NAME`: what purges moved to a store's trash,
/// restored or freed; on a node through the coordinator (admin, audited), by a signed order.
struct TrashCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trash",
        abstract: "List, restore or empty what purges moved to a store's trash.",
        discussion: """
            A purge order moves what it deletes to <store>/.trash for the agent's trash_hours \
            (24 by default) before the bytes are freed; each purge frees the batches older than \
            that. --restore puts a copy back where it was (the next inventory reports it to the \
            catalog); --empty frees batches now, those older than --older-than (default: all).

            With --node, the same on a node of the site (admin, audited): the coordinator queues a \
            purge task carrying the request in its signed order, the agent carries it out (a \
            restored copy is verified and reported, so the catalog lists it again), and this \
            command waits for it and prints what it did.
            """)
    @Option(help: "The store folder (on this machine).") var store: String?
    @Option(help: "A node of the site (through the coordinator).") var node: String?
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Put back this store-relative artifact path.") var restore: String?
    @Flag(help: "Free the trash's batches now.") var empty = false
    @Option(name: .customLong("older-than"), help: "With --empty: only batches deleted longer ago, e.g. 2h.")
    var olderThan: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if (store == nil) == (node == nil) { throw ValidationError("Give either --store or --node.") }
        if restore != nil && empty { throw ValidationError("Give --restore or --empty, not both.") }
        if olderThan != nil && !empty { throw ValidationError("--older-than goes with --empty.") }
    }

    func run() async throws {
        if let node { return try await runSite(node) }
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store!)
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

    private func runSite(_ node: String) async throws {
        try await runSiteCommand(json: output.json) {
            try await CoordinatorClient.with(try connection.endpoint()) { client in
                let order = TrashOrder(
                    restore: restore.map { [$0] },
                    emptyOlderThanSeconds: empty ? try olderThan.map(RetentionPolicy.parseDuration) ?? 0 : nil)
                var task = try await client.trash(TrashRequest(node: node, order: order))
                while !task.state.isFinal {
                    try await Task.sleep(for: .milliseconds(300))
                    task = try await client.task(task.id)
                }
                if output.json { return try Printer(json: true).printJSON(task) }
                guard task.state == .succeeded else {
                    throw BackupError(
                        .taskFailed, "Trash task \(task.id) on \(node) \(task.state.rawValue): \(task.lastError ?? "-")"
                    )
                }
                print(task.detail ?? "done")
            }
        }
    }
}
