import ArgumentParser
import BackupAgent
import BackupCore
import BackupProtocol
import Foundation

/// How the operator reaches the coordinator: each option, else its environment variable, else
/// the `[operator]` table of a configuration file (`--config` or SCM_BACKUP_CONFIG), e.g.
///
///     [operator]
///     coordinator = "https://hub.example.org:8443"
///     certificate = "alice.pem"        # relative to the file's folder
///     key = "alice.key"
///     ca = "ca.pem"
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The coordinator's URL, e.g. https://hub:8443. Or SCM_BACKUP_COORDINATOR.") var coordinator: String?
    @Option(help: "The operator's certificate. Or SCM_BACKUP_CERT.") var cert: String?
    @Option(help: "The operator's key. Or SCM_BACKUP_KEY.") var key: String?
    @Option(help: "The site CA certificate. Or SCM_BACKUP_CA.") var ca: String?
    @Option(
        name: .customLong("coordinator-name"),
        help:
            "The name the coordinator's certificate must carry (role coordinator). Or SCM_BACKUP_COORDINATOR_NAME; default: hub."
    ) var coordinatorName: String?
    @Option(help: "A file with an [operator] table giving the five above. Or SCM_BACKUP_CONFIG.") var config: String?

    func endpoint() throws -> CoordinatorEndpoint {
        let env = ProcessInfo.processInfo.environment
        var fromFile: [String: String] = [:]
        if let path = config ?? env["SCM_BACKUP_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let file = try ConfigFile(path: path)
            let top = file.top
            guard let table = try top.table("operator") else {
                throw top.error(nil, "missing table [operator] (coordinator, certificate, key, ca)")
            }
            for key in ["coordinator", "certificate", "key", "ca", "coordinator_name"] {
                if let v = try table.string(key) {
                    fromFile[key] = key == "coordinator" || key == "coordinator_name" ? v : file.resolve(v)
                }
            }
            try table.finish()
            try top.finish()
        }
        func value(_ option: String?, _ variable: String, _ flag: String, _ key: String) throws -> String {
            guard let v = option ?? env[variable].flatMap({ $0.isEmpty ? nil : $0 }) ?? fromFile[key], !v.isEmpty else {
                throw BackupError(
                    .invalidArgument,
                    "Give \(flag), set \(variable), or name a file with an [operator] table by --config.")
            }
            return v
        }
        return CoordinatorEndpoint(
            url: try value(coordinator, "SCM_BACKUP_COORDINATOR", "--coordinator", "coordinator"),
            certificate: try value(cert, "SCM_BACKUP_CERT", "--cert", "certificate"),
            privateKey: try value(key, "SCM_BACKUP_KEY", "--key", "key"),
            caCertificate: try value(ca, "SCM_BACKUP_CA", "--ca", "ca"),
            coordinatorName: coordinatorName ?? env["SCM_BACKUP_COORDINATOR_NAME"].flatMap { $0.isEmpty ? nil : $0 }
                ?? fromFile["coordinator_name"] ?? "hub")
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
                    var line =
                        "\(t.id)  \(t.kind.rawValue) \(t.node)\(t.source.map { "/\($0)" } ?? "")  \(t.state)  attempts \(t.attempts)"
                    if t.state == "leased", let p = t.progress {
                        line += "  \(p.step)"
                        if let done = p.bytesDone {
                            line += " \(formatBytes(done))" + (p.bytesTotal.map { " of \(formatBytes($0))" } ?? "")
                        }
                        if let rate = p.bytesPerSecond { line += ", \(formatBytes(Int64(rate)))/s" }
                        if let left = p.secondsLeft { line += ", ETA \(formatAge(left))" }
                    }
                    if t.state == "succeeded", let detail = t.detail { line += "  \(detail)" }
                    if t.state == "queued", let retry = t.retryAt, retry > Date() {
                        line += "  retry in \(formatAge(retry.timeIntervalSinceNow))"
                    }
                    if let error = t.lastError, t.state != "succeeded" { line += "  last error: \(error)" }
                    print(line)
                }
                if tasks.isEmpty { print("no tasks") }
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a backup, verify, inventory or purge task for a node (admin).",
            discussion: """
                A backup names a source the site configuration gives the node; a purge names \
                copies the catalog lists on the node (see 'scm-backup artifacts --node NODE'). \
                The agent never deletes the newest copy of a source that verifies.
                """)
        @Option(help: "backup, verify, inventory or purge.") var kind: String
        @Option(help: "The node that runs it.") var node: String
        @Option(help: "The source, for a backup.") var source: String?
        @Option(
            name: .customLong("artifact"),
            help: "For a purge: a copy to delete, as its store-relative path (repeatable).")
        var artifacts: [String] = []
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                guard let kind = TaskKind(rawValue: kind) else {
                    throw BackupError(
                        .invalidArgument, "Unknown task kind '\(kind)': use backup, verify, inventory or purge.")
                }
                if kind == .purge && artifacts.isEmpty {
                    throw BackupError(.invalidArgument, "A purge needs at least one --artifact PATH.")
                }
                if kind != .purge && !artifacts.isEmpty {
                    throw BackupError(.invalidArgument, "--artifact goes with --kind purge.")
                }
                let request = SubmitTaskRequest(
                    kind: kind, node: node, source: source, artifacts: artifacts.isEmpty ? nil : artifacts)
                let task = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.submit(request) }
                if output.json { return try Printer(json: true).printJSON(task) }
                print("queued task \(task.id): \(task.kind.rawValue) on \(task.node)")
            }
        }
    }
}

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
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let artifacts = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.artifacts(node: node, source: source)
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
            if artifacts.isEmpty { print("the catalog knows no artifacts yet") }
        }
    }
}

struct TransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Copy artifacts one node holds to another (admin), each authorised by a signed ticket.",
        discussion: """
            Queues a transfer task for every artifact the catalog lists on --from in good state \
            and not intact on --to (of --source only, if given); what --to already holds intact \
            is skipped without moving a byte. The pairing in the site configuration says which \
            node opens the connection (push: the server, pull: the backup node) and its bandwidth \
            limit. The receiver verifies every byte against the catalog's digest before \
            publishing; an interrupted transfer resumes where it stopped. Watch with 'tasks'.
            """)
    @Option(help: "The node that holds the artifacts.") var from: String
    @Option(help: "The node that receives them.") var to: String
    @Option(help: "Only artifacts of this source.") var source: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runSiteCommand(json: output.json) {
            let plan = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.transfer(TransferRequest(from: from, to: to, source: source))
            }
            if output.json { return try Printer(json: true).printJSON(plan) }
            for task in plan.queued {
                guard let order = task.transfer else { continue }
                print(
                    "queued task \(task.id): \(order.direction.rawValue) \(order.path) (\(formatBytes(order.size))) on \(task.node)"
                )
            }
            for path in plan.skipped { print("skipped \(path): \(to) holds it intact") }
            print("\(plan.queued.count) transfers queued, \(plan.skipped.count) skipped")
        }
    }
}

struct MutantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutants",
        abstract: "List copies that failed verification: quarantined, mutant or mismatching the catalog.",
        discussion: """
            A mutant found by a verify task is moved to <store>/.quarantine on its node (never \
            deleted) and repaired from an intact copy on another node; it is listed here until \
            the repaired copy arrives. Exit 4 when there is any.
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Mutant: Encodable {
        var node: String
        var path: String
        var state: String
        var problem: String?
        var verifiedAt: Date?
    }

    func run() async throws {
        var found = false
        try await runSiteCommand(json: output.json) {
            let artifacts = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.artifacts() }
            let bad: Set<String> = ["mutant", "quarantined", "mismatch"]
            let mutants = artifacts.flatMap { a in
                a.copies.filter { bad.contains($0.state) }.map {
                    Mutant(
                        node: $0.node, path: $0.path, state: $0.state, problem: $0.problem, verifiedAt: $0.verifiedAt)
                }
            }
            found = !mutants.isEmpty
            if output.json { return try Printer(json: true).printJSON(mutants) }
            for m in mutants {
                print(
                    "\(m.node.padding(toLength: 12, withPad: " ", startingAt: 0)) \(m.state)  \(m.path)\(m.problem.map { "\n    \($0)" } ?? "")"
                )
            }
            if mutants.isEmpty { print("no mutants") }
        }
        if found { throw Exit.mutants }
    }
}
