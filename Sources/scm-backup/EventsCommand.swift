import ArgumentParser
import BackupClient
import BackupCore
import Foundation

/// `scm-backup events`: the audit trail of accepted admin requests.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List accepted admin requests, newest first: who (certificate name and serial), what, when.",
        discussion: """
            Every request an admin certificate makes that the coordinator accepts (tasks \
            queued, transfers planned) is logged at notice and recorded in the catalog with the \
            certificate's name, role and serial; refusals are logged, not recorded.
            """)
    @Option(help: "How many events to list.") var limit = 50
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let events = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.events(limit: limit)
            }
            if output.json { return try Printer(json: true).printJSON(events) }
            let formatter = ISO8601DateFormatter()
            for e in events {
                print("\(e.id)  \(formatter.string(from: e.at))  \(e.role) \(e.actor) (\(e.serial))  \(e.request)")
                print("    \(e.detail)")
            }
            if events.isEmpty { print("no events") }
        }
    }
}
