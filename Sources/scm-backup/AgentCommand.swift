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
            The configuration file (TOML, see deploy/agent.example.toml) names the coordinator's \
            URL, this node's certificate and key, the site CA, the store, the folders sources may \
            live in (source_roots) and the paths of the tools. The node's name is its \
            certificate's; its sources are defined in the site configuration on the hub and come \
            with each backup task. Reconnects with backoff; on SIGTERM it finishes the task in \
            hand (or hands a just-leased one back) and exits.
            """
    )

    @Option(help: "This node's agent configuration file (TOML).") var config: String
    @Flag(name: .customLong("check"), help: "Read and check the configuration, print a summary, and exit.")
    var checkOnly = false
    @Option(
        name: .customLong("data-port-file"),
        help: "Write the data port's port to this file once it listens (for data_listen with port 0).")
    var dataPortFile: String?
    @OptionGroup var logLevel: LogLevelOption

    func run() async throws {
        let printer = Printer(json: false)
        do {
            let configuration = try AgentConfiguration.load(config)
            if checkOnly {
                print(
                    "\(config): ok: node \(configuration.node), coordinator \(configuration.coordinator.url), store \(configuration.storePath), kinds \(configuration.kinds.joined(separator: " "))"
                )
                // The file is right; the store may be a disk not mounted yet: said, not fatal here
                // (the agent itself refuses to start without it).
                do { _ = try configuration.store() } catch let error as BackupError {
                    FileHandle.standardError.write(Data("warning: \(error.message)\n".utf8))
                }
                return
            }
            logLevel.bootstrap(configured: configuration.logLevel)
            var logger = Logger(label: "scm-backup.agent")
            logger[metadataKey: "scm.node"] = "\(configuration.node)"
            // The tools and pre-backup steps this agent starts die with it (W14).
            do { try ParentDeath.enable() } catch let error as BackupError {
                logger.warning("tools will not die with this agent", metadata: ["scm.error": "\(error.message)"])
            }
            try await Agent(
                configuration: configuration, logger: logger, dataPortFile: dataPortFile, configPath: config
            ).run()
        } catch {
            printer.report(error)
            throw Exit.failure
        }
    }
}
