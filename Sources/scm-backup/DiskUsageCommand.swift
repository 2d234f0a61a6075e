import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct DiskUsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Show the space artifacts take per source, and the store's free space.",
        discussion: """
            With --store, the store folder on this machine is read. Without it, the catalog's \
            copies on every node of the site (or on --node only) are summed per source, with each \
            node's free space as its agent last reported it.
            """
    )

    @Option(help: "The store folder.")
    var store: String?
    @Option(help: "Only this node of the site (without --store).")
    var node: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if store != nil && node != nil { throw ValidationError("Give --store or --node, not both.") }
    }

    struct NodeRow: Encodable {
        var node: String
        var sources: [Row]
        var totalBytes: Int64
        var diskTotal: Int64?
        var diskFree: Int64?
        /// As the agent last reported them: on the disk, outside the copies above.
        var trashBytes: Int64?
        var quarantineBytes: Int64?
    }

    /// Per node and source, from the catalog.
    private func siteUsage() async throws {
        try await runSiteCommand(json: output.json) {
            let rows = try await CoordinatorClient.with(try connection.endpoint()) { client -> [NodeRow] in
                let nodes = try await client.nodes().filter { node == nil || $0.name == node }
                if let node, nodes.isEmpty {
                    throw BackupError(.unknownNode, "Node '\(node)' has not registered with the coordinator.")
                }
                var rows: [NodeRow] = []
                for n in nodes {
                    let listing = NodeListing.group(try await client.artifacts(node: n.name), node: n.name)
                    let sources = listing.map {
                        Row(
                            origin: $0.origin, kind: $0.kind, source: $0.source, artifacts: $0.copies.count,
                            bytes: $0.totalBytes, newestStamp: $0.copies.last?.stamp)
                    }
                    rows.append(
                        NodeRow(
                            node: n.name, sources: sources, totalBytes: sources.reduce(0) { $0 + $1.bytes },
                            diskTotal: n.diskTotal, diskFree: n.diskFree, trashBytes: n.trashBytes,
                            quarantineBytes: n.quarantineBytes))
                }
                return rows
            }
            if output.json { return try Printer(json: true).printJSON(rows) }
            for r in rows {
                print(
                    "\(r.node): \(formatBytes(r.totalBytes)) in copies"
                        + ((r.trashBytes ?? 0) > 0 ? ", \(formatBytes(r.trashBytes!)) in the trash" : "")
                        + ((r.quarantineBytes ?? 0) > 0 ? ", \(formatBytes(r.quarantineBytes!)) in quarantine" : "")
                        + (r.diskFree.map { "; \(formatBytes($0)) free" } ?? "")
                        + (r.diskTotal.map { " of \(formatBytes($0))" } ?? ""))
                for s in r.sources {
                    print(
                        "  \(formatBytes(s.bytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(s.artifacts) copies  \(s.origin)/\(s.kind)/\(s.source)"
                    )
                }
            }
        }
    }

    struct Row: Encodable {
        var origin: String
        var kind: String
        var source: String
        var artifacts: Int
        var bytes: Int64
        var newestStamp: String?
    }

    struct Report: Encodable {
        var sources: [Row]
        var totalBytes: Int64
        /// `.partial` files: received copies a transfer may resume, or what a crashed backup left
        /// (its agent removes them; see Protocol/store.md).
        var partials: Int
        var partialBytes: Int64
        /// What purges moved to the trash (freed after the agent's trash_hours), and mutants
        /// kept in quarantine: on the store's disk, outside the artifacts above.
        var trashBytes: Int64
        var quarantineBytes: Int64
        var fileSystemBytes: Int64
        var fileSystemFreeBytes: Int64
    }

    func run() async throws {
        guard let store else { return try await siteUsage() }
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            let scan = try store.scan()
            let listing = try SourceListing.group(scan, store: store)
            let partialBytes = try scan.partials.reduce(Int64(0)) { sum, path in
                sum + (try FileSystem.linkStatus(path).map { Int64($0.st_size) } ?? 0)
            }
            var fs = statvfs()
            guard statvfs(store.root, &fs) == 0 else {
                throw BackupError(
                    .io, "Cannot read the free space of '\(store.root)': \(String(cString: strerror(errno))).")
            }
            let rows = listing.map {
                Row(
                    origin: $0.origin, kind: $0.kind, source: $0.source, artifacts: $0.artifacts.count,
                    bytes: $0.totalBytes,
                    newestStamp: $0.artifacts.map(\.stamp).max())
            }
            let report = Report(
                sources: rows, totalBytes: rows.reduce(0) { $0 + $1.bytes }, partials: scan.partials.count,
                partialBytes: partialBytes, trashBytes: try store.trashBytes(),
                quarantineBytes: try store.quarantineBytes(),
                fileSystemBytes: Int64(fs.f_blocks) * Int64(fs.f_frsize),
                fileSystemFreeBytes: Int64(fs.f_bavail) * Int64(fs.f_frsize))
            if output.json {
                try printer.printJSON(report)
                return
            }
            for r in rows {
                print(
                    "\(formatBytes(r.bytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(r.artifacts) artifacts  \(r.origin)/\(r.kind)/\(r.source)"
                )
            }
            if report.partials > 0 {
                print(
                    "\(formatBytes(report.partialBytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(report.partials) partials (transfers to resume, or left by a crash)"
                )
            }
            for (bytes, what) in [
                (report.trashBytes, "in the trash (purged, freed after trash_hours; scm-backup trash)"),
                (report.quarantineBytes, "in quarantine (mutants kept for review)"),
            ] where bytes > 0 {
                print("\(formatBytes(bytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(what)")
            }
            print(
                "\(formatBytes(report.totalBytes + report.trashBytes + report.quarantineBytes)) in all; \(formatBytes(report.fileSystemFreeBytes)) free of \(formatBytes(report.fileSystemBytes)) on the store's file system"
            )
        }
    }
}
