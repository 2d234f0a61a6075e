import ArgumentParser
import BackupAgent
import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the agent of this node: register with the coordinator and run the tasks it leases.",
        discussion: """
            The node's name is its certificate's. Backups run only for sources given with --source \
            on this node: a task names a source, never a path. Reconnects with backoff; on SIGTERM \
            it finishes the task in hand (or hands a just-leased one back) and exits.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The node's store folder.") var store: String
    @Option(
        name: .customLong("source"),
        help: "A source of this node as NAME=KIND:PATH (repeatable), e.g. env=svn:/var/scm/repos/env.")
    var sources: [String] = []
    @Option(name: .customLong("lease-wait"), help: "Seconds a lease request waits on the coordinator.") var leaseWait =
        25
    @OptionGroup var tools: ToolOptions

    func run() async throws {
        let printer = Printer(json: false)
        do {
            let endpoint = try connection.endpoint()
            let identity = try PeerIdentity(certificate: try PEMFiles.certificate(endpoint.certificate))
            guard identity.role == .agent else {
                throw BackupError(
                    .invalidArgument,
                    "'\(endpoint.certificate)' is a \(identity.role.rawValue) certificate; an agent needs an agent certificate."
                )
            }
            var specs: [String: SourceSpec] = [:]
            let toolSet = try tools.tools()
            for text in sources {
                guard let eq = text.firstIndex(of: "="), let colon = text[eq...].firstIndex(of: ":"),
                    let kind = SourceKind(rawValue: String(text[text.index(after: eq)..<colon]))
                else {
                    throw BackupError(
                        .invalidArgument,
                        "--source '\(text)' is not NAME=KIND:PATH with a kind of svn, git, trac, folder or sqlite.")
                }
                let name = String(text[..<eq])
                try StoreName.validate(name, what: "source name")
                specs[name] = SourceSpec(
                    kind: kind, name: name, path: String(text[text.index(after: colon)...]), tools: toolSet)
            }
            var config = AgentConfiguration(
                coordinator: endpoint, storePath: store, node: identity.name, sources: specs)
            config.leaseWaitSeconds = leaseWait
            var logger = Logger(label: "scm-backup.agent")
            logger[metadataKey: "scm.node"] = "\(identity.name)"
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: AgentService(configuration: config, logger: logger))],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch {
            printer.report(error)
            throw Exit.failure
        }
    }
}
