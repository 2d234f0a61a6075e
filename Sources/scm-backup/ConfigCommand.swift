import ArgumentParser
import BackupAgent
import BackupCoordinator
import BackupCore
import BackupProtocol
import Foundation

/// `scm-backup config check FILE`: a site file (hub) or an agent file, checked as the process
/// that reads it would, without starting anything.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check a configuration file.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a site file (with [coordinator]) or an agent file (with [agent]) without starting it.",
            discussion: """
                An error names the file, line and key at fault (exit 1). For a site file, the \
                sources an agent would refuse (outside the source_roots or with a pre-backup step \
                it does not define, as each agent reported at its last register to the catalog \
                the file names) are named too, with their file and line (exit 3).
                """)
        @Argument(help: "The file.") var file: String
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var file: String
            var kind: String
            var summary: String
            var refused: [String]
        }

        func run() async throws {
            let printer = Printer(json: output.json)
            var report: Report
            do {
                let top = try ConfigFile(path: file).top
                if top.keys.contains("coordinator") {
                    let configuration = try CoordinatorConfiguration.load(file)
                    let site = configuration.site
                    let sources = site.nodes.values.reduce(0) { $0 + $1.sources.count }
                    var refused: [String] = []
                    let refusals = try Catalog.sourceRefusals(site, catalogAt: configuration.database)
                    let tables = try top.table("nodes")
                    for key in refusals.keys.sorted() {
                        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                        let table = try tables?.table(parts[0])?.table("sources")?.table(parts[1])
                        let error = table?.error("path", refusals[key] ?? "") ?? BackupError(.refused, key)
                        refused.append(error.message)
                    }
                    report = Report(
                        file: file, kind: "site",
                        summary:
                            "\(site.nodes.count) nodes, \(sources) sources, \(site.pairings.count) pairings; listens on \(configuration.host):\(configuration.port)",
                        refused: refused)
                } else if top.keys.contains("agent") {
                    let configuration = try AgentConfiguration.load(file)
                    report = Report(
                        file: file, kind: "agent",
                        summary:
                            "node \(configuration.node), coordinator \(configuration.coordinator.url), store \(configuration.storePath), source roots \((configuration.sourceRoots ?? []).joined(separator: " "))",
                        refused: [])
                } else {
                    throw top.error(nil, "neither a site file ([coordinator]) nor an agent file ([agent])")
                }
            } catch {
                printer.report(error)
                throw Exit.failure
            }
            if output.json {
                try printer.printJSON(report)
            } else {
                print("\(file): ok (\(report.kind) file): \(report.summary)")
                for line in report.refused { print("refused by its agent: \(line)") }
            }
            if !report.refused.isEmpty { throw Exit.partial }
        }
    }
}
