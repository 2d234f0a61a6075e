import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup status`: per source the newest artifact and its copies; per node its state.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the site: each source's newest artifact, its verified copies, late or not; each node.",
        discussion: """
            A copy counts as verified when it is intact and the coordinator recorded its \
            verification (on arrival, or by a verify it leased) within [verify] max_age; an intact \
            copy verified longer ago is verify-overdue. A source is LATE when it has no artifact \
            newer than its last scheduled time plus [schedule] backup_grace. Exit code 3 when a \
            source is late, lacks a verified copy on a paired backup node, or would be refused by \
            its agent.
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let status = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.status() }
            let attention = status.sources.contains { s in
                s.late || s.refusal != nil || s.newest == nil || s.copies.contains { !$0.verified }
            }
            if output.json {
                try Printer(json: true).printJSON(status)
            } else {
                Self.print(status)
            }
            if attention { throw Exit.partial }
        }
    }

    static func print(_ status: SiteStatus) {
        let formatter = ISO8601DateFormatter()
        Swift.print("SOURCES")
        for s in status.sources {
            var line = "  \(s.node)/\(s.source) (\(s.kind))"
            if let n = s.newest {
                line += "  \(n.stamp)" + (n.revision.map { " r\($0)" } ?? "") + "  \(formatBytes(n.size))"
                if let age = n.ageSeconds { line += "  \(formatAge(TimeInterval(age))) old" }
            } else {
                line += "  no artifact yet"
            }
            if s.late { line += "  LATE" }
            if let next = s.nextRun { line += "  next \(formatter.string(from: next))" }
            Swift.print(line)
            for c in s.copies {
                let standing =
                    c.verified ? "verified" : c.verifyOverdue ? "verify-overdue" : (c.state?.rawValue ?? "absent")
                Swift.print(
                    "      \(c.node)  \(standing)"
                        + (c.verifiedAt.map { "  verified \(formatter.string(from: $0))" } ?? ""))
            }
            if let why = s.refusal { Swift.print("      REFUSED by its agent: \(why)") }
            if let hold = s.purgeHold { Swift.print("      PURGE HELD: \(hold)") }
        }
        if status.sources.isEmpty { Swift.print("  no sources") }
        Swift.print("NODES")
        for n in status.nodes {
            var line = "  \(n.name) (\(n.roles.joined(separator: ",")))  \(n.online ? "online" : "OFFLINE")"
            if let free = n.diskFree { line += "  \(formatBytes(free)) free" }
            line += "  tasks: \(n.tasksRunning) running, \(n.tasksQueued) queued"
            Swift.print(line)
        }
        guard let purge = status.purge, !purge.pauses.isEmpty || !purge.stages.isEmpty else { return }
        Swift.print("PURGE")
        for p in purge.pauses {
            Swift.print(
                "  PAUSED \(p.node.map { "on \($0)" } ?? "site-wide") by \(p.by) since \(formatter.string(from: p.at))"
                    + (p.reason.map { ": \($0)" } ?? ""))
        }
        for stage in purge.stages {
            Swift.print(
                "  \(stage.node)  last stage \(formatter.string(from: stage.at)): \(stage.ordered) ordered"
                    + (stage.task.map { " (task \($0))" } ?? "") + ", \(stage.kept) kept")
            if let paused = stage.paused { Swift.print("      nothing ordered: \(paused)") }
            for node in stage.heldBackBy { Swift.print("      held back by \(node)") }
            for hold in stage.holds { Swift.print("      hold: \(hold)") }
        }
    }
}

/// `scm-backup df`: every node's free space (the legacy `scm-backup-df`).
struct FreeSpaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "df", abstract: "Show every node's store size and free space, as its agent last reported them.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var node: String
        var online: Bool
        var diskTotal: Int64?
        var diskFree: Int64?
        var usedPercent: Double?
        /// Purged copies waiting in the trash and mutants in quarantine: on the disk, outside the catalog's copies.
        var trashBytes: Int64?
        var quarantineBytes: Int64?
    }

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let nodes = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.nodes() }
            let rows = nodes.map { n in
                Row(
                    node: n.name, online: n.online, diskTotal: n.diskTotal, diskFree: n.diskFree,
                    usedPercent: n.diskTotal.flatMap { total in
                        n.diskFree.map { total > 0 ? (Double(total - $0) / Double(total) * 1000).rounded() / 10 : 0 }
                    }, trashBytes: n.trashBytes, quarantineBytes: n.quarantineBytes)
            }
            if output.json { return try Printer(json: true).printJSON(rows) }
            for r in rows {
                let size = r.diskTotal.map(formatBytes) ?? "?"
                let free = r.diskFree.map(formatBytes) ?? "?"
                print(
                    "\(r.node)  \(size) total  \(free) free" + (r.usedPercent.map { "  \($0)% used" } ?? "")
                        + ((r.trashBytes ?? 0) > 0 ? "  \(formatBytes(r.trashBytes!)) in the trash" : "")
                        + ((r.quarantineBytes ?? 0) > 0 ? "  \(formatBytes(r.quarantineBytes!)) in quarantine" : "")
                        + (r.online ? "" : "  (offline: as last reported)"))
            }
            if rows.isEmpty { print("no nodes have registered") }
        }
    }
}

/// `scm-backup check`: what each backup node lacks (the legacy `scm-backup-check`).
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Show, for each pairing and source, the server's artifacts a backup node lacks intact.",
        discussion: "Exit code 3 when a backup node lacks something; 'scm-backup run' or 'transfer' sends it.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let entries = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.check() }
            if output.json {
                try Printer(json: true).printJSON(entries)
            } else {
                for e in entries {
                    print(
                        "\(e.server) -> \(e.backup)  \(e.source)  \(e.held)/\(e.artifacts) held"
                            + (e.missingCount > 0 ? "  \(e.missingCount) MISSING" : ""))
                    for path in e.missing { print("    missing \(path)") }
                    if e.missingCount > e.missing.count {
                        print("    (and \(e.missingCount - e.missing.count) more)")
                    }
                }
                if entries.isEmpty { print("no pairing has artifacts to hold") }
            }
            if entries.contains(where: { $0.missingCount > 0 }) { throw Exit.partial }
        }
    }
}
