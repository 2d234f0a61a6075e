import ArgumentParser
import BackupAgent
import BackupCore
import BackupProtocol
import Foundation

/// How the operator reaches the coordinator; each option falls back to an environment variable.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The coordinator's URL, e.g. https://hub:8443. Or SCM_BACKUP_COORDINATOR.") var coordinator: String?
    @Option(help: "The operator's certificate. Or SCM_BACKUP_CERT.") var cert: String?
    @Option(help: "The operator's key. Or SCM_BACKUP_KEY.") var key: String?
    @Option(help: "The site CA certificate. Or SCM_BACKUP_CA.") var ca: String?

    func endpoint() throws -> CoordinatorEndpoint {
        let env = ProcessInfo.processInfo.environment
        func value(_ option: String?, _ variable: String, _ flag: String) throws -> String {
            guard let v = option ?? env[variable], !v.isEmpty else {
                throw BackupError(.invalidArgument, "Give \(flag) or set \(variable).")
            }
            return v
        }
        return CoordinatorEndpoint(
            url: try value(coordinator, "SCM_BACKUP_COORDINATOR", "--coordinator"),
            certificate: try value(cert, "SCM_BACKUP_CERT", "--cert"),
            privateKey: try value(key, "SCM_BACKUP_KEY", "--key"),
            caCertificate: try value(ca, "SCM_BACKUP_CA", "--ca"))
    }
}

/// Runs an operator command: errors are printed, an unreachable coordinator exits with 10.
func runSiteCommand(json: Bool, _ body: () async throws -> Void) async throws {
    let printer = Printer(json: json)
    do {
        try await body()
    } catch let unreachable as CoordinatorUnreachable {
        printer.report(BackupError(.io, unreachable.description))
        throw Exit.unreachable
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printer.report(error)
        throw Exit.failure
    }
}

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
                print(
                    "\(n.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(n.online ? "online " : "OFFLINE") \(n.role) \(n.version ?? "-")  disk free \(free)  heartbeat \(seen)"
                )
            }
            if nodes.isEmpty { print("no node has registered yet") }
        }
    }
}

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks", abstract: "List tasks with their state, or submit one (admin).",
        subcommands: [List.self, Submit.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let tasks = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.tasks() }
                if output.json { return try Printer(json: true).printJSON(tasks) }
                for t in tasks {
                    print(
                        "\(t.id)  \(t.kind.rawValue) \(t.node)\(t.source.map { "/\($0)" } ?? "")  \(t.state)  attempts \(t.attempts)\(t.lastError.map { "  last error: \($0)" } ?? "")"
                    )
                }
                if tasks.isEmpty { print("no tasks") }
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a backup, verify or inventory task for a node (admin).")
        @Option(help: "backup, verify or inventory.") var kind: String
        @Option(help: "The node that runs it.") var node: String
        @Option(help: "The source, for a backup.") var source: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                guard let kind = TaskKind(rawValue: kind) else {
                    throw BackupError(.invalidArgument, "Unknown task kind '\(kind)': use backup, verify or inventory.")
                }
                let task = try await CoordinatorClient.with(try connection.endpoint()) {
                    try await $0.submit(SubmitTaskRequest(kind: kind, node: node, source: source))
                }
                if output.json { return try Printer(json: true).printJSON(task) }
                print("queued task \(task.id): \(task.kind.rawValue) on \(task.node)")
            }
        }
    }
}
