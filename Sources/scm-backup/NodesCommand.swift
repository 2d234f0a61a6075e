import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List the site's nodes: online, version, disk free, last heartbeat.")
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
            }
            if nodes.isEmpty { print("the site configuration has no nodes") }
        }
    }
}
