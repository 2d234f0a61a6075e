import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol

/// `scm-backup purge`: the local retention of a store (`--store`), or the site's purge stage
/// on one node (`--node`, through the coordinator); a dry run unless `--apply`. Its
/// subcommands work the site's switches.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract:
            "Show or run what retention deletes: in a local store, or on a node of the site (a dry run unless --apply).",
        discussion: """
            With --node, the coordinator's purge stage for that node: every copy there, whether \
            it would be deleted and why each kept one stays (the newest verified, too few fresh \
            verified copies on backup nodes, read by a task, a regression, retention), and what \
            holds purging back; --apply queues that purge now (admin). The agent still applies \
            its own floors and moves what it deletes to its trash.

            With --store, the local policy given by --keep-* on a store folder: ages count from \
            each artifact's creation; --keep-within is anchored at the newest good artifact, so \
            a dead server keeps its history. The newest artifact that verifies is always kept, \
            and so are artifacts flagged as regressions. Emptied date folders are removed and \
            'last' follows.
            """,
        subcommands: [Pause.self, Resume.self, Release.self]
    )

    @Option(help: "The store folder (local purge).")
    var store: String?
    @Option(help: "The node of the site (its purge stage, through the coordinator).")
    var node: String?
    @Option(name: .customLong("keep-last"), help: "Local: keep the newest N good artifacts of each source.")
    var keepLast: Int?
    @Option(
        name: .customLong("keep-within"),
        help: "Local: also keep those made within this long of the newest good one, e.g. 7d, 12h, 2w.")
    var keepWithin: String?
    @Option(name: .customLong("keep-daily"), help: "Local: also keep the newest of each of the last N days.")
    var keepDaily = 0
    @Option(name: .customLong("keep-weekly"), help: "Local: also keep the newest of each of the last N weeks.")
    var keepWeekly = 0
    @Option(name: .customLong("keep-monthly"), help: "Local: also keep the newest of each of the last N months.")
    var keepMonthly = 0
    @Option(help: "Local: only the source of this name.")
    var source: String?
    @Flag(help: "Delete (local) or queue the purge (--node, admin); without it nothing is changed.")
    var apply = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Item: Encodable {
        var path: String
        var keep: Bool
        var reasons: [String]
    }

    /// Checked in ``run()``, not in `validate()`: the subcommands run the parent's validation too.
    func check() throws {
        guard (store == nil) != (node == nil) else {
            throw ValidationError("Give either --store (a local store) or --node (a node of the site).")
        }
        if node != nil,
            keepLast != nil || keepWithin != nil || keepDaily + keepWeekly + keepMonthly > 0 || source != nil
        {
            throw ValidationError(
                "--keep-* and --source are for a local store; a node's retention is the site file's [retention].")
        }
        if store != nil, keepLast == nil { throw ValidationError("A local purge needs --keep-last.") }
        for (value, flag) in [
            (keepLast ?? 0, "--keep-last"), (keepDaily, "--keep-daily"), (keepWeekly, "--keep-weekly"),
            (keepMonthly, "--keep-monthly"),
        ]
        where value < 0 {
            throw ValidationError("\(flag) must be 0 or more, not \(value).")
        }
    }

    func run() async throws {
        try check()
        if let node { return try await runSite(node) }
        let printer = Printer(json: output.json)
        try printer.run {
            let policy = RetentionPolicy(
                keepLast: keepLast ?? 0, keepWithin: try keepWithin.map(RetentionPolicy.parseDuration),
                keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly)
            let items = try Store(root: store!).purge(policy, source: source, apply: apply)
            if output.json {
                try printer.printJSON(items.map { Item(path: $0.artifact.path, keep: $0.keep, reasons: $0.reasons) })
                return
            }
            for item in items {
                let verb = item.keep ? "keep  " : (apply ? "delete" : "would delete")
                print("\(verb) \(item.artifact.path)  (\(item.reasons.joined(separator: ", ")))")
            }
            let gone = items.filter { !$0.keep }.count
            print(
                apply
                    ? "\(gone) artifacts deleted, \(items.count - gone) kept"
                    : "dry run: \(gone) artifacts would be deleted, \(items.count - gone) kept; add --apply to delete")
        }
    }

    private func runSite(_ node: String) async throws {
        try await runSiteCommand(json: output.json) {
            try await CoordinatorClient.with(try connection.endpoint()) { client in
                let plan = apply ? try await client.applyPurge(node: node) : try await client.purgePlan(node: node)
                if output.json { return try Printer(json: true).printJSON(plan) }
                Self.printPlan(plan, applied: apply)
            }
        }
    }

    static func printPlan(_ plan: PurgePlan, applied: Bool) {
        for entry in plan.copies {
            let verb = entry.delete ? (applied && plan.task != nil ? "delete" : "would delete") : "keep  "
            print(
                "\(verb) \(entry.path)\(entry.orphan == true ? " [orphan]" : "")  (\(entry.reasons.joined(separator: "; ")))"
            )
        }
        for entry in plan.quarantine ?? [] {
            let verb = entry.delete ? (applied && plan.task != nil ? "remove" : "would remove") : "keep  "
            print("\(verb) \(entry.path)  (\(entry.reasons.joined(separator: "; ")))")
        }
        for hold in plan.holds { print("hold: \(hold)") }
        for node in plan.heldBackBy { print("held back by \(node)") }
        if let paused = plan.paused { print("paused: \(paused)") }
        let gone = plan.deletions.count
        if let tasks = plan.tasks {
            print(
                "purge tasks \(tasks.map(String.init).joined(separator: ", ")) queued on \(plan.node): \(gone) copies, \(plan.copies.count - gone) kept"
            )
        } else if let task = plan.task {
            print("purge task \(task) queued on \(plan.node): \(gone) copies, \(plan.copies.count - gone) kept")
        } else {
            print(
                "\(applied ? "nothing ordered" : "dry run"): \(gone) copies on \(plan.node) would be deleted, \(plan.copies.count - gone) kept"
                    + (applied ? "" : "; add --apply to queue the purge"))
        }
    }

    /// `purge pause [--node NAME]`: stop the site's purging (admin, audited).
    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause purging site-wide, or on one node (admin).",
            discussion: """
                No purge is ordered while a switch is on; status shows it. An agent also \
                refuses every order while its store holds .scm-backup-purge-paused or its \
                agent.toml says purge_paused = true, whatever the hub says.
                """)
        @Option(help: "Only this node.") var node: String?
        @Option(help: "Why (shown in status).") var reason: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await PurgeCommand.flip(true, node: node, reason: reason, connection, output)
        }
    }

    /// `purge resume [--node NAME]`.
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume purging site-wide, or on one node (admin).")
        @Option(help: "Only this node.") var node: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await PurgeCommand.flip(false, node: node, reason: nil, connection, output)
        }
    }

    static func flip(
        _ on: Bool, node: String?, reason: String?, _ connection: ConnectionOptions, _ output: OutputOptions
    ) async throws {
        try await runSiteCommand(json: output.json) {
            try await CoordinatorClient.with(try connection.endpoint()) { client in
                let pauses = try await client.setPurgePause(on, PurgeSwitchRequest(node: node, reason: reason))
                if output.json { return try Printer(json: true).printJSON(pauses) }
                print("purging \(on ? "paused" : "resumed") \(node.map { "on \($0)" } ?? "site-wide")")
                for p in pauses {
                    print(
                        "  paused \(p.node.map { "on \($0)" } ?? "site-wide") by \(p.by) since \(WireJSON.format(p.at))"
                            + (p.reason.map { ": \($0)" } ?? ""))
                }
            }
        }
    }

    /// `purge release --source NAME --origin NODE`: accept a flagged newest backup (admin, audited).
    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept a source's newest backup flagged as a regression as its new baseline (admin).",
            discussion: """
                While a source's newest backup is flagged (revision backwards, UUID changed, \
                size collapsed), all purging of that source holds. Release it once you have \
                checked that the change is intended.
                """)
        @Option(help: "The source.") var source: String
        @Option(help: "The server node it belongs to.") var origin: String
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                try await CoordinatorClient.with(try connection.endpoint()) { client in
                    let released = try await client.releasePurge(PurgeReleaseRequest(origin: origin, source: source))
                    if output.json { return try Printer(json: true).printJSON(released) }
                    print(
                        "accepted \(released.path) as the baseline of \(origin)/\(source) (\(released.regressions.joined(separator: "; "))); its purging goes on"
                    )
                }
            }
        }
    }
}
