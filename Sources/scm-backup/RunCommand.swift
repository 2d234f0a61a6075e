import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup run`: a run now (admin), optionally followed until it ends.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start a run now: each selected source's backup, then its transfers to its backup nodes (admin).",
        discussion: """
            Without --node and --source every source of the site is selected (an svn source a \
            Trac environment names is backed up with it). A source whose previous backup still \
            runs is recorded as skipped. With --wait, progress is shown until the run ends; the \
            exit code is 0 when every source reached its copies, 3 when some did not (they are \
            named), 1 when none did.
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only this node's sources.") var node: String?
    @Option(help: "Only the source of this name.") var source: String?
    @Flag(help: "Follow the run until it ends.") var wait = false
    @Option(help: "With --wait: seconds between two looks.") var pollSeconds: Double = 2

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            try await CoordinatorClient.with(try connection.endpoint()) { client in
                var run = try await client.startRun(StartRunRequest(node: node, source: source))
                if !output.json {
                    print("run \(run.id) started: \(run.sources.count) sources, \(run.tasksTotal) tasks so far")
                }
                guard wait else {
                    if output.json { try Printer(json: true).printJSON(run) }
                    return
                }
                var shown = ""
                let started = Date()
                while !run.state.isFinal {
                    try await Task.sleep(for: .milliseconds(Int64(max(0.1, pollSeconds) * 1000)))
                    run = try await client.run(run.id)
                    guard !output.json else { continue }
                    let line = try await Self.progress(run, client: client, since: started)
                    if line != shown {
                        print(line)
                        shown = line
                    }
                }
                if output.json { try Printer(json: true).printJSON(run) } else { RunsCommand.printRun(run) }
                switch run.state {
                case .succeeded: return
                case .failed: throw Exit.failure
                default: throw Exit.partial
                }
            }
        }
    }

    /// `tasks done/total, bytes moving, rate` from the run and its leased tasks' progress.
    static func progress(_ run: RunInfo, client: CoordinatorClient, since: Date) async throws -> String {
        let ids = Set(run.sources.flatMap { s in [s.backupTask].compactMap { $0 } + s.copies.compactMap(\.task) })
        let leased = try await client.tasks(TaskListQuery(states: [.leased], limit: TaskListQuery.maxLimit))
            .filter { ids.contains($0.id) }
        let bytes = leased.compactMap { $0.progress?.bytesDone }.reduce(0, +)
        let rate = leased.compactMap { $0.progress?.bytesPerSecond }.reduce(0, +)
        var line = "run \(run.id): \(run.tasksDone)/\(run.tasksTotal) tasks done"
        if !leased.isEmpty {
            line += ", \(leased.count) running, \(formatBytes(bytes)) moved"
            if rate > 0 { line += " at \(formatBytes(Int64(rate)))/s" }
        }
        return line + " (\(formatAge(Date().timeIntervalSince(since))))"
    }
}

/// `scm-backup runs`: the runs, newest first, and one run in full.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List runs, newest first, or show one.",
        subcommands: [List.self, Show.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only runs older than this run id (the next page).") var before: Int64?
        @Option(help: "At most this many runs (1 to \(TaskListQuery.maxLimit)).") var limit = RunListQuery.defaultLimit

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let query = try RunListQuery { name in
                    switch name {
                    case "before": before.map(String.init)
                    case "limit": String(limit)
                    default: nil
                    }
                }
                let runs = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.runs(query) }
                if output.json { return try Printer(json: true).printJSON(runs) }
                let formatter = ISO8601DateFormatter()
                for r in runs {
                    let short = r.sources.filter { $0.state != .succeeded && $0.state.isFinal }.count
                    print(
                        "\(r.id)  \(r.state.rawValue)  \(r.trigger.rawValue)\(r.requestedBy.map { " by \($0)" } ?? "")  "
                            + "started \(formatter.string(from: r.startedAt))  \(r.sources.count) sources"
                            + (short > 0 ? ", \(short) short" : "") + "  \(r.tasksDone)/\(r.tasksTotal) tasks")
                }
                if runs.isEmpty { print("no runs") }
                if runs.count == query.limit, let last = runs.last, last.id > 1 {
                    print("(at most \(query.limit) listed; older ones: --before \(last.id))")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one run: each source, its artifacts and copies.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The run's id.") var id: Int64

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let run = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.run(id) }
                if output.json { return try Printer(json: true).printJSON(run) }
                RunsCommand.printRun(run)
            }
        }
    }

    /// A run in full, as text.
    static func printRun(_ run: RunInfo) {
        let formatter = ISO8601DateFormatter()
        print(
            "run \(run.id)  \(run.state.rawValue)  \(run.trigger.rawValue)"
                + (run.slot.map { " slot \(formatter.string(from: $0))" } ?? "")
                + (run.requestedBy.map { " by \($0)" } ?? "") + "  started \(formatter.string(from: run.startedAt))"
                + (run.finishedAt.map { "  finished \(formatter.string(from: $0))" } ?? ""))
        for s in run.sources {
            print(
                "  \(s.node)/\(s.source)  \(s.state.rawValue)  \(s.verifiedCopies)/\(s.copiesWanted) copies"
                    + (s.backupTask.map { "  backup task \($0)" } ?? "") + (s.reason.map { "  \($0)" } ?? ""))
            for path in s.artifacts {
                print("    \(path)")
                for c in s.copies where c.path == path {
                    print(
                        "      \(c.node)  \(c.state.rawValue)" + (c.task.map { "  task \($0)" } ?? "")
                            + (c.reason.map { "  \($0)" } ?? ""))
                }
            }
        }
    }
}
