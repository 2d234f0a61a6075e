import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup alerts`: what the hub's alert service found, its silences, and a channel test.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "List the site's alerts (firing first), silence one, or test the channels.",
        discussion: """
            The hub evaluates its rules every minute (Protocol/alerts.md): backup-missing, \
            not-off-box, verify-overdue, mutant, disk-low, agent-silent, regression-held, \
            purge-paused. Each fires once with a notice, repeats every repeat_hours while it \
            lasts, and sends a resolved notice; alerts of a silent agent's node fold into its \
            notice. Exit 3 when an alert is firing.
            """,
        subcommands: [List.self, Silence.self, Test.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The alerts, firing first.")
        @Flag(help: "Also the resolved ones (kept 30 days).") var all = false
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var firing = false
            try await runSiteCommand(json: output.json) {
                let alerts = try await CoordinatorClient.with(try connection.endpoint()) {
                    try await $0.alerts(all: all)
                }
                firing = alerts.contains { $0.phase == .firing && $0.quiet == nil }
                if output.json { return try Printer(json: true).printJSON(alerts) }
                let formatter = ISO8601DateFormatter()
                for a in alerts {
                    print(
                        "\(a.phase.rawValue.uppercased())  \(a.rule.rawValue)  \(a.subject)  since \(formatter.string(from: a.since))"
                    )
                    print("    \(a.summary)")
                    if let quiet = a.quiet { print("    (\(quiet))") }
                    if let error = a.deliveryError { print("    notice not delivered: \(error)") }
                }
                if alerts.isEmpty { print(all ? "no alerts" : "no alerts firing") }
            }
            if firing { throw Exit.partial }
        }
    }

    struct Silence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "silence",
            abstract: "No notices of RULE (for a source and/or node) for a while (admin, audited).")
        @Argument(help: "The rule: \(AlertRule.allCases.map(\.rawValue).joined(separator: ", ")).") var rule: String
        @Option(help: "Only alerts of this source.") var source: String?
        @Option(help: "Only alerts of this node.") var node: String?
        @Option(name: .customLong("for"), help: "How long, e.g. 7d, 12h, 30m.") var duration: String
        @Option(help: "Why (recorded with the silence and in events).") var reason: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                guard let rule = AlertRule(rawValue: rule) else {
                    throw BackupError(
                        .invalidArgument,
                        "'\(rule)' is not a rule; the rules are \(AlertRule.allCases.map(\.rawValue).joined(separator: ", "))."
                    )
                }
                let seconds: TimeInterval
                do { seconds = try RetentionPolicy.parseDuration(duration) } catch let error as BackupError {
                    throw BackupError(
                        .invalidArgument, "--for '\(duration)' is not a duration such as 7d: \(error.message)")
                }
                let silence = try await CoordinatorClient.with(try connection.endpoint()) {
                    try await $0.silence(
                        SilenceRequest(rule: rule, source: source, node: node, seconds: Int(seconds), reason: reason))
                }
                if output.json { return try Printer(json: true).printJSON(silence) }
                print(
                    "silenced \(rule.rawValue) until \(ISO8601DateFormatter().string(from: silence.until)) (silence \(silence.id))"
                )
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test", abstract: "Send a test notice through every channel (admin).")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                try await CoordinatorClient.with(try connection.endpoint()) { try await $0.testAlerts() }
                if !output.json { print("test notice sent") }
            }
        }
    }
}
