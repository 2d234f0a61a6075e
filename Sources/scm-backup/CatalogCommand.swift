import ArgumentParser
import BackupCoordinator
import BackupCore
import BackupProtocol
import Foundation

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Repair the hub's catalog: rebuild it from the stores when it is lost.",
        subcommands: [Rebuild.self]
    )

    /// `catalog rebuild --config FILE [--report [--wait]]`: on the hub, its coordinator stopped.
    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make a new catalog from every agent's inventory, when the old one is lost and no self-backup restores it.",
            discussion: """
                Run on the hub while its coordinator is stopped. Makes a new catalog (a new epoch; \\
                refused where a catalog still is: move a damaged one aside first), queues an \\
                inventory of every node of the site and pauses purging site-wide. Then start the \\
                coordinator. An artifact gets its reference digest only from a receipt beside a copy \\
                that verifies with the hub's ticket key or [coordinator] trusted_signing_keys, or \\
                from its origin's listing of its own copy; every other copy stays unconfirmed. \\
                --report (with --wait: once every inventory has ended) prints what was found.
                """)
        @Option(help: "The hub's site file.") var config: String
        @Flag(help: "Print what the rebuild found so far instead of starting one.") var report = false
        @Option(help: "With --report: wait up to this many seconds for every inventory to end.") var wait: Double?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let site = try CoordinatorConfiguration.load(config)
                if report { return try await printReport(site) }
                let me = try PeerIdentity(certificate: try PEMFiles.certificate(site.certificate))
                let nodes = site.site.nodes.keys.sorted()
                let (_, state, epoch) = try await Catalog.startRebuild(
                    at: site.database, nodes: nodes, actor: me, now: Date())
                if output.json { return try Printer(json: true).printJSON(state) }
                print(
                    "made a new catalog at \(site.database) (epoch \(epoch); the lost one: \(state.lostEpoch ?? "unknown"))"
                )
                print("  queued an inventory of each of \(nodes.count) nodes: \(nodes.joined(separator: ", "))")
                print("  purging is paused site-wide")
                print(
                    "start the coordinator now; 'scm-backup catalog rebuild --config \(config) --report --wait 3600' prints what it finds"
                )
            }
        }

        private func printReport(_ site: CoordinatorConfiguration) async throws {
            let catalog = try Catalog(path: site.database)
            let deadline = Date().addingTimeInterval(wait ?? 0)
            var state = try await catalog.rebuildState()
            while let current = state, current.finishedAt == nil, Date() < deadline {
                try await Task.sleep(for: .milliseconds(500))
                state = try await catalog.rebuildState()
            }
            guard let state else {
                throw BackupError(
                    .notFound, "The catalog '\(site.database)' was not rebuilt ('catalog rebuild' starts one).")
            }
            let counts = try await catalog.copyCounts()
            if output.json { return try Printer(json: true).printJSON(state) }
            guard let finished = state.finishedAt else {
                print(
                    "the rebuild started \(WireJSON.format(state.startedAt)) still waits for inventories (tasks \(state.tasks.values.sorted().map(String.init).joined(separator: ", ")))"
                )
                for c in counts { print("  \(c.node): \(c.copies) copies so far, \(c.unconfirmed) unconfirmed") }
                throw Exit.partial
            }
            print(
                "rebuilt \(WireJSON.format(finished)): \(state.artifacts ?? 0) artifacts, \(state.copies ?? 0) copies; \(state.unconfirmedCopies ?? 0) copies of \(state.unconfirmedArtifacts ?? 0) artifacts unconfirmed"
            )
            for c in counts { print("  \(c.node): \(c.copies) copies, \(c.unconfirmed) unconfirmed") }
            if let failed = state.failedNodes {
                print("  no inventory from \(failed.joined(separator: ", ")): their copies are not in the catalog")
            }
            if (state.unconfirmedCopies ?? 0) > 0 {
                print(
                    "  unconfirmed: no receipt a trusted key verifies and no listing by their origin; they are never a reference"
                )
            }
            print("  purging stays paused until 'scm-backup purge resume'")
        }
    }
}
