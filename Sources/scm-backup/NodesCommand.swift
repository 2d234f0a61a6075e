import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List the site's nodes, or accept a node's held listing (admin).",
        subcommands: [List.self, AcceptMissing.self], defaultSubcommand: List.self)

    struct AcceptMissing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "accept-missing",
            abstract: "Let the next listing of a node apply although it marks many copies missing.",
            discussion: """
                A complete listing (inventory, verify) that would mark more than \
                inventory_missing_max of a node's copies missing is held: most likely its store's \
                disk is not mounted. When the copies really are gone, accept it, then run an \
                inventory of the node.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The node whose listing is held.") var node: String

        func run() async throws {
            try await runSiteCommand(json: false) {
                try await CoordinatorClient.with(try connection.endpoint()) { client in
                    _ = try await client.send(
                        "POST", "/v1/nodes/\(node)/accept-missing", body: String?.none,
                        as: CoordinatorClient.Empty.self,
                        allowEmpty: true)
                }
                print(
                    "accepted: the next listing of \(node) applies; run 'scm-backup tasks submit --kind inventory --node \(node)'"
                )
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the site's nodes: online, version, disk free, last heartbeat.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let nodes = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.nodes() }
                if output.json { return try Printer(json: true).printJSON(nodes) }
                for n in nodes {
                    let seen = n.lastHeartbeatAt.map { formatAge(Date().timeIntervalSince($0)) + " ago" } ?? "never"
                    let free = n.diskFree.map(formatBytes) ?? "-"
                    let roles = n.roles?.joined(separator: ",") ?? "(not in the site configuration)"
                    let clock = n.clockOffsetSeconds.map { String(format: "  clock %+.2fs", $0) } ?? ""
                    print(
                        "\(n.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(n.online ? "online " : "OFFLINE") \(roles.padding(toLength: 14, withPad: " ", startingAt: 0)) \(n.version ?? "-")  disk free \(free)  heartbeat \(seen)\(clock)"
                    )
                    if let hold = n.hold { print("  HELD: \(hold)") }
                }
                if nodes.isEmpty { print("the site configuration has no nodes") }
            }
        }
    }
}
