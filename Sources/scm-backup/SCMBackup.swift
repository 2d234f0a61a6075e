import ArgumentParser
import BackupCore
import Foundation

/// `scm-backup`: keeps every source-code repository of a site safe.
@main
struct SCMBackup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scm-backup",
        abstract: "Back up Subversion, Git, Trac and folder sources into verified .tar.gz artifacts.",
        discussion: """
            Local commands act on one store folder (--store DIR); site commands talk to the \
            coordinator over mutual TLS. Exit codes: 0 ok, 1 failure, 2 usage error, 3 partial \
            (some items failed), 4 mutants found, 10 coordinator unreachable.
            """,
        version: "0.3.0",
        subcommands: [
            BackupCommand.self, VerifyCommand.self, ListCommand.self, DiskUsageCommand.self,
            LastLinksCommand.self, PurgeCommand.self, TrashCommand.self, RecoverCommand.self, RecoverConfigCommand.self,
            InitStoreCommand.self, ArchiveCommand.self, PKICommand.self, CoordinatorCommand.self, AgentCommand.self,
            NodesCommand.self,
            ArtifactsCommand.self, TransferCommand.self, MutantsCommand.self, EventsCommand.self,
            TasksCommand.self, SchedulesCommand.self, RunCommand.self, RunsCommand.self, StatusCommand.self,
            FreeSpaceCommand.self,
            CheckCommand.self, ConfigCommand.self, HubCommand.self, CatalogCommand.self, AlertsCommand.self,
            DemoCommand.self,
        ]
    )

    /// Runs the command; a usage error exits with 2 (argument-parser's default is 64).
    static func main() async {
        // Before any service starts its threads (``HeapTrim``).
        HeapTrim.limitArenas()
        // A tool started by an agent, to die with it (``ParentDeath``); never a user's command.
        if CommandLine.arguments.count > 1, CommandLine.arguments[1] == ParentDeath.execToolArgument {
            ParentDeath.execTool(Array(CommandLine.arguments.dropFirst(2)))
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
