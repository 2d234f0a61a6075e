import BackupCore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The agent's configuration as it is now, shared by its session and replaced by a reload
/// (SIGHUP): a task reads it once when it starts and runs with that value to its end.
public struct AgentConfigurationSource: Sendable {
    private let box: LockedBox<AgentConfiguration>

    public init(_ configuration: AgentConfiguration) { box = LockedBox(configuration) }

    public var current: AgentConfiguration { box.withLock { $0 } }

    func replace(with configuration: AgentConfiguration) { box.withLock { $0 = configuration } }
}

extension AgentConfiguration {
    /// The keys whose change only a restart applies: who it is and talks to, its store, its data
    /// port and the keys it checks tickets and orders with. What a reload applies: its
    /// `source_roots`, `[tools]`, `[pre_backup.*]` steps and `offline_work_seconds`.
    public static func restartKeys(_ old: AgentConfiguration, _ new: AgentConfiguration) -> [String] {
        var keys: [String] = []
        if old.coordinator.url != new.coordinator.url { keys.append("agent.coordinator") }
        if old.coordinator.coordinatorName != new.coordinator.coordinatorName { keys.append("agent.coordinator_name") }
        if old.coordinator.certificate != new.coordinator.certificate { keys.append("agent.certificate") }
        if old.coordinator.privateKey != new.coordinator.privateKey { keys.append("agent.key") }
        if old.coordinator.caCertificate != new.coordinator.caCertificate { keys.append("agent.ca") }
        if old.node != new.node { keys.append("agent.certificate (its node name)") }
        if old.storePath != new.storePath { keys.append("agent.store") }
        if old.storeID != new.storeID { keys.append("agent.store_id") }
        if old.dataListen?.host != new.dataListen?.host || old.dataListen?.port != new.dataListen?.port {
            keys.append("agent.data_listen")
        }
        if old.ticketKeyFiles != new.ticketKeyFiles { keys.append("agent.ticket_key / trusted_signing_keys") }
        if old.purgeKeyFiles != new.purgeKeyFiles { keys.append("agent.purge_key / trusted_purge_keys") }
        if old.maxTransfers != new.maxTransfers { keys.append("agent.max_transfers") }
        if old.stallSeconds != new.stallSeconds { keys.append("agent.stall_seconds") }
        if old.peers != new.peers { keys.append("agent.peers") }
        if old.dataLimits != new.dataLimits { keys.append("agent's data port limits") }
        if old.leaseWaitSeconds != new.leaseWaitSeconds { keys.append("agent.lease_wait_seconds") }
        if old.logLevel != new.logLevel { keys.append("agent.log_level") }
        return keys
    }
}

/// On SIGHUP, reads the agent's file again: a task running finishes with what it started with,
/// the next ones get the new roots, tools and steps (and the coordinator learns them at the
/// next register). A broken file, or one that changes a key only a restart applies, is refused
/// and logged with the reason; the configuration in use stays.
struct AgentReloadService: Service {
    let path: String
    let configurations: AgentConfigurationSource
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let new = try AgentConfiguration.load(path)
                let restart = AgentConfiguration.restartKeys(configurations.current, new)
                guard restart.isEmpty else {
                    throw BackupError(
                        .configInvalid,
                        "\(restart.joined(separator: ", ")) changed, which only a restart applies")
                }
                configurations.replace(with: new)
                logger.notice(
                    "SIGHUP: configuration reloaded",
                    metadata: [
                        "scm.file": "\(path)",
                        "scm.sourceRoots": "\((new.sourceRoots ?? []).joined(separator: ","))",
                        "scm.steps": "\(new.preBackupSteps.keys.sorted().joined(separator: ","))",
                    ])
            } catch {
                logger.error(
                    "SIGHUP: reload refused; the configuration in use stays",
                    metadata: [
                        "scm.file": "\(path)", "scm.reason": "\((error as? BackupError)?.message ?? "\(error)")",
                    ])
            }
        }
    }
}

extension AgentService {
    /// A session with a configuration nothing reloads.
    init(
        configuration: AgentConfiguration, logger: Logger, dataPortFile: String?, dataPortState: DataPortState,
        announcement: DataPortAnnouncement?
    ) {
        self.init(
            configurations: AgentConfigurationSource(configuration), logger: logger, dataPortFile: dataPortFile,
            dataPortState: dataPortState, announcement: announcement)
    }
}
