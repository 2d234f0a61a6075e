import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// The coordinator process's composition root: the domain objects made once (catalog, clocks,
/// task signals, transfer desk, revocations) and the services that share them, run in one
/// `ServiceGroup`. Today: the mTLS API server, the lease sweeper, the run driver and the
/// scheduler; the dashboard listener, the alert evaluator and the enrolment listener join ``services(onRunning:)``
/// here, each getting the same objects, none made inside a route builder.
public struct Coordinator: Sendable {
    /// The configuration it started with; the site part of it may be reloaded since (``sites``).
    public let configuration: CoordinatorConfiguration
    /// The site as it is now.
    public let sites: SiteSource
    public let catalog: Catalog
    /// Instants that are persisted (leases, tickets, retries).
    public let wallClock: any WallClock
    /// Durations (the sweep interval, long-poll waits).
    public let clock: any Clock<Duration>
    public let logger: Logger
    let signals: TaskSignals
    let revocations: RevocationSource
    let refusals: RefusalLog
    // The domain: none of it knows HTTP; the controllers of the API server call it.
    public let queue: TaskQueue
    public let nodes: NodeRegistry
    public let submissions: TaskSubmission
    public let results: TaskResults
    public let audit: AuditLog
    public let runs: Runs
    public let purges: PurgeStage
    let desk: TransferDesk
    /// Folder recoveries' sealed previews, in memory only.
    let previews = RecoveryPreviews()
    /// The alert channels' own failures (the dead-man heartbeat), raised as alerts.
    let channelHealth = ChannelHealth()
    /// Agents' plans for when the hub is away, and what they made then.
    let fallbacks: Fallbacks
    /// `/metrics`: the site's state at each scrape, and the events counted since start.
    public let metrics: SiteMetrics

    public init(
        configuration: CoordinatorConfiguration, catalog: Catalog, wallClock: any WallClock = SystemWallClock(),
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger = Logger(label: "scm-backup.coordinator")
    ) throws {
        self.configuration = configuration
        let sites = SiteSource(configuration.site)
        self.sites = sites
        var catalog = catalog
        catalog.inventoryMissingMax = configuration.inventoryMissingMax
        self.catalog = catalog
        self.wallClock = wallClock
        self.clock = clock
        self.logger = logger
        let signals = TaskSignals()
        self.signals = signals
        revocations = RevocationSource(path: configuration.revocationList, logger: logger)
        refusals = RefusalLog()
        let ticketKey = try configuration.ticketKey.map { try Ed25519PEM.readPrivateKey($0) }
        var receiptKeys = try SigningKeyring(files: configuration.trustedSigningKeys)
        if let ticketKey, let path = configuration.ticketKey { receiptKeys.add(ticketKey.publicKey, file: path) }
        let desk = TransferDesk(
            sites: sites, catalog: self.catalog, signals: signals, ticketKey: ticketKey,
            purgeKey: try configuration.purgeKey.map { try Ed25519PEM.readPrivateKey($0) }, receiptKeys: receiptKeys,
            signedLifetime: 2 * configuration.leaseSeconds, logger: logger)
        self.desk = desk
        fallbacks = Fallbacks(sites: sites, catalog: self.catalog, desk: desk, logger: logger)
        let queue = TaskQueue(
            store: catalog, signals: signals, wallClock: wallClock, clock: clock,
            leaseSeconds: configuration.leaseSeconds, stallSeconds: configuration.stallSeconds,
            retrySeconds: configuration.retrySeconds, maxWaitSeconds: configuration.maxLeaseWaitSeconds, logger: logger)
        self.queue = queue
        nodes = NodeRegistry(
            sites: sites, catalog: catalog, wallClock: wallClock,
            heartbeatSeconds: configuration.heartbeatSeconds)
        submissions = TaskSubmission(
            sites: sites, catalog: catalog, queue: queue, hasPurgeKey: configuration.purgeKey != nil,
            wallClock: wallClock)
        let board = StatusBoard(
            sites: sites, catalog: catalog, wallClock: wallClock, heartbeatSeconds: configuration.heartbeatSeconds)
        metrics = SiteMetrics(
            board: board, catalog: catalog, certificateFiles: Self.certificateFiles(configuration),
            health: channelHealth, wallClock: wallClock)
        results = TaskResults(
            queue: queue, catalog: catalog, desk: desk, signals: signals, wallClock: wallClock, previews: previews,
            metrics: metrics)
        audit = AuditLog(catalog: catalog, wallClock: wallClock)
        runs = Runs(
            sites: sites, catalog: self.catalog, signals: signals, wallClock: wallClock, logger: logger)
        purges = PurgeStage(
            sites: sites, catalog: self.catalog, queue: queue, hasPurgeKey: configuration.purgeKey != nil,
            wallClock: wallClock, logger: logger)
    }

    /// The lease sweeper of this coordinator.
    public var sweeper: LeaseSweeper {
        LeaseSweeper(
            catalog: catalog, signals: signals, wallClock: wallClock, clock: clock,
            interval: LeaseSweeper.interval(leaseSeconds: configuration.leaseSeconds),
            sites: sites,
            history: HistoryRetention(
                taskDays: configuration.taskHistoryDays, eventDays: configuration.eventHistoryDays,
                runDays: configuration.runHistoryDays),
            logger: logger)
    }

    /// The scheduler of this coordinator: each source's runs at its schedule's times.
    public var scheduler: Scheduler {
        Scheduler(
            sites: sites, catalog: catalog, runs: runs, submissions: submissions, wallClock: wallClock,
            clock: clock, logger: logger)
    }

    /// The site's status and check reports.
    public var statusBoard: StatusBoard {
        StatusBoard(
            sites: sites, catalog: catalog, wallClock: wallClock,
            heartbeatSeconds: configuration.heartbeatSeconds)
    }

    /// The alert evaluator: rules from the catalog and the clock, notices through the channels.
    public var alertService: AlertService {
        AlertService(
            sites: sites, catalog: catalog, board: statusBoard, heartbeatSeconds: configuration.heartbeatSeconds,
            certificateFiles: Self.certificateFiles(configuration), health: channelHealth, wallClock: wallClock,
            clock: clock, logger: logger)
    }

    /// The hub's own certificates that alerts and metrics watch.
    static func certificateFiles(_ configuration: CoordinatorConfiguration) -> [(name: String, path: String)] {
        [
            ("the hub (\(configuration.certificate))", configuration.certificate),
            ("the site CA (\(configuration.caCertificate))", configuration.caCertificate),
        ]
    }

    /// What the dashboard's pages read.
    public var dashboardData: DashboardData {
        DashboardData(board: statusBoard, catalog: catalog, runs: runs, nodes: nodes, wallClock: wallClock)
    }

    /// The time series of the trends and plots (node disks, every 5 minutes).
    public var sampler: SampleService {
        SampleService(catalog: catalog, wallClock: wallClock, clock: clock, logger: logger)
    }

    /// The hub's dead-man heartbeat to an outside monitor (`[alerts.heartbeat]`).
    public var deadMan: DeadMan {
        DeadMan(sites: sites, clock: clock, health: channelHealth, logger: logger)
    }

    /// The run driver of this coordinator: each run's transfers once its backups made artifacts.
    public var runDriver: RunDriver {
        RunDriver(
            sites: sites, catalog: catalog, desk: desk, purges: purges, signals: signals, wallClock: wallClock,
            clock: clock,
            heartbeatSeconds: configuration.heartbeatSeconds, logger: logger)
    }

    /// The hub's self-backup, when `self_backup` names a folder.
    public var selfBackup: SelfBackup? {
        configuration.selfBackup.map {
            SelfBackup(
                settings: $0, configuration: configuration, catalog: catalog, wallClock: wallClock, logger: logger)
        }
    }

    /// Every service of the process, in start order (they stop in reverse): the API server
    /// last, so that it stops first and the sweeper outlives the requests. `onRunning` gets the
    /// port the API server listens on.
    public func services(
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        onDashboard: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> [any Service] {
        let snapshots: [any Service] =
            selfBackup.map {
                [
                    SelfBackupService(
                        selfBackup: $0, signals: signals, clock: clock, wallClock: wallClock, logger: logger)
                ]
            } ?? []
        let dashboard: [any Service] =
            try configuration.dashboard.map {
                [try DashboardServer.makeApplication(self, settings: $0, onRunning: onDashboard)]
            } ?? []
        return [sweeper, runDriver, scheduler, alertService, deadMan, sampler] + snapshots + dashboard
            + [try CoordinatorServer.makeApplication(self, onRunning: onRunning)]
    }

    /// Runs every service until SIGTERM or SIGINT, which drain them gracefully. `onRunning` gets
    /// the API server's port once it listens (to write a port file); when it throws, or a
    /// service fails, the group shuts down and the error is thrown here.
    /// With `configPath`, SIGHUP reloads the configuration from it (``ReloadService``).
    /// `onDashboard` gets the dashboard's port once it listens (when `[dashboard]` is set).
    public func run(
        configPath: String? = nil, onRunning: @escaping @Sendable (Int) async throws -> Void = { _ in },
        onDashboard: @escaping @Sendable (Int) async throws -> Void = { _ in }
    ) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let hook = StartupHook(ports: ports, action: onRunning)
        let (dashboardPorts, dashboardContinuation) = AsyncStream.makeStream(of: Int.self)
        let dashboardHook: [any Service] =
            configuration.dashboard == nil ? [] : [StartupHook(ports: dashboardPorts, action: onDashboard)]
        let reload: [any Service] = configPath.map { [reloadService(path: $0)] } ?? []
        let services =
            try services(onRunning: { continuation.yield($0) }, onDashboard: { dashboardContinuation.yield($0) })
            + [hook] + dashboardHook + reload
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Runs a start-up action once the API server listens, as a service of the group, so that a
/// failing action stops the group like any failing service (never `exit` from a callback).
struct StartupHook: Service {
    let ports: AsyncStream<Int>
    let action: @Sendable (Int) async throws -> Void

    func run() async throws {
        for await port in ports.cancelOnGracefulShutdown() {
            try await action(port)
            break
        }
        // Done; it stays until the group stops, since its ending would stop the group.
        try? await gracefulShutdown()  // Throws only when cancelled, which ends it the same way.
    }
}
