import BackupClient
import BackupCore
import BackupHTTP
import BackupProtocol
import Crypto
import Foundation
import Logging
import ServiceLifecycle

/// The port the data port listens on, from the data port service to the session, which
/// registers with it.
struct DataPortAnnouncement: Sendable {
    let ports: AsyncStream<Int>
    let continuation: AsyncStream<Int>.Continuation

    init() { (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1)) }

    /// The port, once the data port listens; nil when it stopped before that.
    func port() async -> Int? {
        var iterator = ports.makeAsyncIterator()
        return await iterator.next()
    }
}

/// The agent's data port as a service of its own: other agents push artifacts to it and pull
/// from it (see ``DataServer``); the copies it receives are reported to the coordinator with a
/// client of its own. It stops last, after the session has handed back or finished its task.
struct DataPortService: Service {
    let configuration: AgentConfiguration
    let state: DataPortState
    let announcement: DataPortAnnouncement
    let logger: Logger

    func run() async throws {
        let key = try configuration.ticketKeys()
        guard !key.isEmpty else {
            throw BackupError(
                .invalidArgument, "A data port needs the coordinator's ticket key (ticket_key or trusted_signing_keys)."
            )
        }
        let listening = LockedBox(false)
        let listen = configuration.dataListen ?? ("127.0.0.1", 0)
        do {
            try await serve(key: key, listening: listening)
        } catch  where !listening.withLock({ $0 }) {
            // A port another process holds, an address not on this host: fatal at start-up, named.
            throw BackupError(
                .configInvalid,
                "The data port cannot listen on \(listen.host):\(listen.port) (data_listen in the agent's configuration): \(error)."
            )
        }
    }

    private func serve(key: SigningKeyring, listening: LockedBox<Bool>) async throws {
        let (logger, announcement) = (logger, announcement)
        let journal = ResultJournal(configuration)
        try await CoordinatorClient.with(configuration.coordinator) { client in
            let app = try DataServer.makeApplication(
                configuration, ticketKeys: key, state: state,
                report: { report in
                    // Journalled first: a report the hub does not take now is sent again by the
                    // session after it reconnects (``ResultJournal``).
                    var journalled: String?
                    do { journalled = try journal.write(report) } catch {
                        logger.error(
                            "a received copy's report cannot be journalled", metadata: ["scm.error": "\(error)"])
                    }
                    do {
                        try await client.reportCopies(report)
                        if let journalled { try journal.remove(journalled) }
                    } catch {
                        logger.warning(
                            "could not report a received copy; it is sent again after the next registration",
                            metadata: ["scm.error": "\(error)"])
                    }
                }, logger: logger,
                onRunning: { port in
                    listening.withLock { $0 = true }
                    logger.info("data port listening", metadata: ["scm.port": "\(port)"])
                    announcement.continuation.yield(port)
                })
            defer { announcement.continuation.finish() }
            try await app.run()
        }
    }
}

/// The agent process's composition root: the state its services share (the data port's
/// revocation list, the announced port) and its services in one `ServiceGroup`, the data port
/// first and the coordinator session last, so that on SIGTERM the session stops leasing and
/// finishes (or hands back) its task before the data port closes.
public struct Agent: Sendable {
    public let configuration: AgentConfiguration
    public let logger: Logger
    /// Where to write the data port's port once it listens; nil for nowhere.
    public let dataPortFile: String?
    /// The file SIGHUP reloads the configuration from; nil: no reload.
    public let configPath: String?
    let configurations: AgentConfigurationSource

    public init(
        configuration: AgentConfiguration, logger: Logger, dataPortFile: String? = nil, configPath: String? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.dataPortFile = dataPortFile
        self.configPath = configPath
        configurations = AgentConfigurationSource(configuration)
    }

    /// The services, in start order.
    public func services() -> [any Service] {
        // The revocation list kept in the store, so that a restart without the hub fails closed.
        let state: DataPortState
        do { state = DataPortState(revoked: try Store(root: configuration.storePath).readRevokedSerials()) } catch {
            logger.error("the stored revocation list cannot be read", metadata: ["scm.error": "\(error)"])
            state = DataPortState()
        }
        let announcement = configuration.dataListen == nil ? nil : DataPortAnnouncement()
        let session = AgentService(
            configurations: configurations, logger: logger, dataPortFile: dataPortFile, dataPortState: state,
            announcement: announcement)
        let reload: [any Service] =
            configPath.map { [AgentReloadService(path: $0, configurations: configurations, logger: logger)] } ?? []
        guard let announcement else { return [session] + reload }
        return [
            DataPortService(configuration: configuration, state: state, announcement: announcement, logger: logger),
            session,
        ] + reload
    }

    /// Runs the services until SIGTERM or SIGINT; one that fails stops the others.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services().map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
