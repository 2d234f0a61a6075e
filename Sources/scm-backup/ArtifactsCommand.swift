import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct ArtifactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts",
        abstract: "List the catalog's artifacts and their copies per node.",
        discussion: """
            The catalog learns of copies from the agents' backup, inventory, verify and purge \
            results. A copy is intact, mutant, unverified (listed, never verified), or mismatch \
            (its sidecar disagrees with the digest the catalog recorded first).
            """)
    @Option(help: "Only artifacts with a copy on this node.") var node: String?
    @Option(help: "Only artifacts of this source.") var source: String?
    @Flag(help: "Also artifacts no copy is left of (purged or lost everywhere).") var gone = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let artifacts = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.artifacts(node: node, source: source, gone: gone)
            }
            if output.json { return try Printer(json: true).printJSON(artifacts) }
            for a in artifacts {
                print(
                    "\(a.origin)/\(a.kind)/\(a.source)/\(a.stamp)/\(a.fileName)  \(formatBytes(a.size))  sha256 \(a.sha256.map { String($0.prefix(12)) } ?? "-")"
                )
                for c in a.copies {
                    let verified =
                        c.verifiedAt.map { "verified \(formatAge(Date().timeIntervalSince($0))) ago" }
                        ?? "never verified"
                    print(
                        "    \(c.node.padding(toLength: 12, withPad: " ", startingAt: 0)) \(c.state)  \(verified)\(c.problem.map { "  (\($0))" } ?? "")"
                    )
                }
                if a.copies.isEmpty { print("    no copy left") }
            }
            if artifacts.isEmpty {
                print(
                    gone
                        ? "the catalog knows no artifacts yet"
                        : "the catalog knows no copy of any artifact (--gone: also those purged)")
            }
        }
    }
}
