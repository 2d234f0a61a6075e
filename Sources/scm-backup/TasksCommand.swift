import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks", abstract: "List tasks with their state, or submit one (admin).",
        subcommands: [List.self, Submit.self, Cancel.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List tasks, newest first.",
            discussion: """
                Lists a page of at most --limit tasks; when more are older, the last line says \
                how to list the next page (--before ID).
                """)
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only tasks in these states (comma-separated: queued, leased, succeeded, failed, cancelled).")
        var state: String?
        @Option(help: "Only tasks older than this task id (the next page).") var before: Int64?
        @Option(help: "At most this many tasks (1 to \(TaskListQuery.maxLimit)).") var limit = TaskListQuery
            .defaultLimit

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let query = try TaskListQuery { name in
                    switch name {
                    case "state": state
                    case "before": before.map(String.init)
                    case "limit": String(limit)
                    default: nil
                    }
                }
                let tasks = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.tasks(query) }
                if output.json { return try Printer(json: true).printJSON(tasks) }
                for t in tasks {
                    var line =
                        "\(t.id)  \(t.kind.rawValue) \(t.node)\(t.source.map { "/\($0)" } ?? "")  \(t.state)  attempts \(t.attempts)"
                    if t.state == .leased, let p = t.progress {
                        line += "  \(p.step)"
                        if let done = p.bytesDone {
                            line += " \(formatBytes(done))" + (p.bytesTotal.map { " of \(formatBytes($0))" } ?? "")
                        }
                        if let rate = p.bytesPerSecond { line += ", \(formatBytes(Int64(rate)))/s" }
                        if let left = p.secondsLeft { line += ", ETA \(formatAge(left))" }
                    }
                    if t.state == .succeeded, let detail = t.detail { line += "  \(detail)" }
                    if t.state == .queued, let retry = t.retryAt, retry > Date() {
                        line += "  retry in \(formatAge(retry.timeIntervalSinceNow))"
                    }
                    if let error = t.lastError, t.state != .succeeded { line += "  last error: \(error)" }
                    print(line)
                }
                if tasks.isEmpty { print("no tasks") }
                if tasks.count == query.limit, let last = tasks.last, last.id > 1 {
                    print("(at most \(query.limit) listed; older ones: --before \(last.id))")
                }
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a backup, verify, inventory or purge task for a node (admin).",
            discussion: """
                A backup names a source the site configuration gives the node; a purge names \
                copies the catalog lists on the node (see 'scm-backup artifacts --node NODE'). \
                The agent never deletes the newest copy of a source that verifies.
                """)
        @Option(help: "backup, verify, inventory or purge.") var kind: String
        @Option(help: "The node that runs it.") var node: String
        @Option(help: "The source, for a backup.") var source: String?
        @Option(
            name: .customLong("artifact"),
            help: "For a purge: a copy to delete, as its store-relative path (repeatable).")
        var artifacts: [String] = []
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                guard let kind = TaskKind(rawValue: kind) else {
                    throw BackupError(
                        .invalidArgument, "Unknown task kind '\(kind)': use backup, verify, inventory or purge.")
                }
                if kind == .purge && artifacts.isEmpty {
                    throw BackupError(.invalidArgument, "A purge needs at least one --artifact PATH.")
                }
                if kind != .purge && !artifacts.isEmpty {
                    throw BackupError(.invalidArgument, "--artifact goes with --kind purge.")
                }
                let request = SubmitTaskRequest(
                    kind: kind, node: node, source: source, artifacts: artifacts.isEmpty ? nil : artifacts)
                let task = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.submit(request) }
                if output.json { return try Printer(json: true).printJSON(task) }
                print("queued task \(task.id): \(task.kind.rawValue) on \(task.node)")
            }
        }
    }

    /// `tasks cancel --id N [--reason TEXT]` (admin, audited).
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued task (admin); a leased one runs to its end.",
            discussion: """
                For a task that can never run (an inventory of a node that will not come back, \
                which keeps a catalog rebuild open): it ends 'cancelled' with the reason.
                """)
        @Option(help: "The task's id.") var id: Int64
        @Option(help: "Why, for the task and the audit trail.") var reason: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let task = try await CoordinatorClient.with(try connection.endpoint()) { client in
                    try await client.send(
                        "POST", "/v1/tasks/\(id)/cancel", body: CancelTaskRequest(reason: reason), as: TaskInfo.self)
                }
                if output.json { return try Printer(json: true).printJSON(task) }
                print("cancelled task \(task.id): \(task.kind.rawValue) on \(task.node)")
            }
        }
    }
}
