import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup schedules`: when each source is backed up next, and what its last slot did.
struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "Show each source's schedule, its next backup and what the scheduler did at its last slot.",
        discussion: """
            The coordinator queues each source's backup at the times of its schedule ([schedule] \
            and the source's schedule and time_zone in site.toml), each source a fixed jitter \
            after the slot. An svn source that a Trac environment names is backed up with it.
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let schedules = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.schedules() }
            if output.json { return try Printer(json: true).printJSON(schedules) }
            let formatter = ISO8601DateFormatter()
            for s in schedules {
                let when = "\(s.schedule) \(s.timeZone)" + (s.jitterSeconds > 0 ? " +\(s.jitterSeconds)s" : "")
                let next =
                    s.backedUpWith.map { "with \($0)" } ?? s.nextFire.map { "next \(formatter.string(from: $0))" }
                    ?? "never"
                print("\(s.node)/\(s.source)  \(when)  \(next)")
                if let outcome = s.lastOutcome, let slot = s.lastSlot {
                    print("    last \(formatter.string(from: slot)): \(outcome)")
                }
            }
            if schedules.isEmpty { print("no sources") }
        }
    }
}
