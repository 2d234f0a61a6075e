import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct TransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Copy artifacts one node holds to another (admin), each authorised by a signed ticket.",
        discussion: """
            Queues a transfer task for every artifact the catalog lists on --from in good state \
            and not intact on --to (of --source only, if given); what --to already holds intact \
            is skipped without moving a byte; with --at only those of that day. The pairing in the site configuration says which \
            node opens the connection (push: the server, pull: the backup node) and its bandwidth \
            limit. The receiver verifies every byte against the catalog's digest before \
            publishing; an interrupted transfer resumes where it stopped. Watch with 'tasks'.
            """)
    @Option(help: "The node that holds the artifacts.") var from: String
    @Option(help: "The node that receives them.") var to: String
    @Option(help: "Only artifacts of this source.") var source: String?
    @Option(help: "Only artifacts made on this UTC day (YYYY-MM-DD).") var at: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let plan = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.transfer(TransferRequest(from: from, to: to, source: source, at: at))
            }
            if output.json { return try Printer(json: true).printJSON(plan) }
            for task in plan.queued {
                guard let order = task.transfer else { continue }
                print(
                    "queued task \(task.id): \(order.direction.rawValue) \(order.path) (\(formatBytes(order.size))) on \(task.node)"
                )
            }
            for path in plan.skipped { print("skipped \(path): \(to) holds it intact") }
            for path in plan.noSpace ?? [] { print("not queued \(path): no space") }
            if let reason = plan.noSpaceReason { print("not queued for lack of space: \(reason)") }
            print("\(plan.queued.count) transfers queued, \(plan.skipped.count) skipped")
        }
    }
}
