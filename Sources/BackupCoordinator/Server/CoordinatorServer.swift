import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Hummingbird
import HummingbirdHTTP2
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// Where the coordinator listens, which identity it presents and whom it trusts.
public struct CoordinatorConfiguration: Sendable {
    /// The address to listen on. The default is 127.0.0.1.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one. The default is 8443.
    public var port = 8443
    /// The coordinator's certificate (PEM, chain) and key, issued with role `coordinator`.
    public var certificate: String
    public var privateKey: String
    /// The site CA certificate: only clients with certificates it issued get in.
    public var caCertificate: String
    /// The site's `revoked.json`, re-read when it changes; nil for none.
    public var revocationList: String?
    /// The catalog database file.
    public var database: String
    /// How often agents send heartbeats. The default is 15 seconds.
    public var heartbeatSeconds = 15
    /// How long a lease lasts unless renewed. The default is 60 seconds.
    public var leaseSeconds: Double = 60
    /// How long a holder may renew without progress. The default is 10 minutes.
    public var stallSeconds: Double = 600
    /// How long a lease request waits at most. The default is 30 seconds.
    public var maxLeaseWaitSeconds = 30
    /// The first retry delay of a failed task, doubled for each later attempt. The default is
    /// 10 seconds.
    public var retrySeconds: Double = 10
    /// The least severe log level written (`log_level`: trace, debug, info, notice, warning,
    /// error, critical). The default is info; `--log-level` overrides it.
    public var logLevel: Logger.Level = .info
    /// The site: only its nodes may register, and tasks name its nodes and sources.
    public var site: SiteConfiguration
    /// The Ed25519 key that signs transfer tickets (`ticket-signing.key`); nil: no transfers.
    /// A ticket lives twice `leaseSeconds`; each renewal of the lease brings a fresh one.
    public var ticketKey: String?
    /// The Ed25519 key that signs purge orders (`purge-signing.key`); nil: no purges.
    public var purgeKey: String?
    /// Handshake and idle timeouts and connection caps of the listener (`handshake_timeout`,
    /// `idle_timeout`, `max_connections`, `max_connections_per_address`). The defaults are 10 s,
    /// 60 s, 4096 and 64.
    public var limits = ListenerLimits()

    public init(
        certificate: String, privateKey: String, caCertificate: String, revocationList: String?, database: String,
        site: SiteConfiguration
    ) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.caCertificate = caCertificate
        self.revocationList = revocationList
        self.database = database
        self.site = site
    }
}

/// The coordinator's HTTPS server: mutual TLS with the site CA, identities from certificates,
/// endpoints under `/v1` (see `Protocol/`).
public enum CoordinatorServer {
    /// The largest request body accepted. The default is 1 MiB.
    public static let maxBodyBytes = Request.maxJSONBytes
    /// The largest task result accepted (an inventory lists every copy of a store: about
    /// 400 bytes each). The default is 64 MiB.
    public static let maxResultBytes = 64 << 20
    /// The API versions this coordinator speaks.
    public static let versions = ["v1"]

    /// The server's TLS settings: a client certificate is required and verified against the
    /// site CA; its address is not checked (agents are known by name, see STACK-NOTES).
    static func tlsConfiguration(_ config: CoordinatorConfiguration) throws -> TLSConfiguration {
        try ServerTLS.configuration(
            certificate: config.certificate, privateKey: config.privateKey, ca: config.caCertificate)
    }

    /// The CA keys readable beside the hub's own keys: the running coordinator never needs
    /// `ca.key`, and one on the hub lets whoever takes the hub mint any identity.
    public static func caKeysBeside(_ config: CoordinatorConfiguration) -> [String] {
        let folders = Set(
            [config.certificate, config.privateKey, config.ticketKey, config.purgeKey]
                .compactMap { $0 }.map { ($0 as NSString).deletingLastPathComponent })
        return folders.sorted().map { $0 + "/" + SiteCA.caKeyFile }.filter {
            FileManager.default.isReadableFile(atPath: $0)
        }
    }

    /// Reads the certificate, key and CA the server would use, so that `--check` finds a bad
    /// one before start-up does.
    public static func checkTLSFiles(_ config: CoordinatorConfiguration) throws {
        do { _ = try tlsConfiguration(config) } catch {
            throw BackupError(
                .configInvalid,
                "The coordinator's TLS files cannot be used (certificate '\(config.certificate)', key '\(config.privateKey)', CA '\(config.caCertificate)'): \(error)"
            )
        }
    }

    /// Builds the application of a coordinator made for `config` and `catalog` (tests and
    /// tools that need only the API server); `onRunning` receives the port it listens on.
    public static func makeApplication(
        _ config: CoordinatorConfiguration, catalog: Catalog, logger: Logger = Logger(label: "scm-backup.coordinator"),
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try makeApplication(Coordinator(configuration: config, catalog: catalog, logger: logger), onRunning: onRunning)
    }

    /// Builds the API server over `coordinator`'s domain objects; `onRunning` receives the port
    /// it listens on (an error from it stops the server).
    public static func makeApplication(
        _ coordinator: Coordinator, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let config = coordinator.configuration
        let catalog = coordinator.catalog
        let logger = coordinator.logger
        let clock = coordinator.wallClock
        let router = Router(context: CoordinatorContext.self)
        // First, so that every error below it leaves as JSON; every client here holds a site certificate.
        router.add(middleware: ErrorMiddleware<CoordinatorContext>(revealsInternals: true))
        let revocations = coordinator.revocations
        let refusals = coordinator.refusals
        router.add(
            middleware: IdentityMiddleware<CoordinatorContext>(
                isRevoked: { try revocations.current().isRevoked($0) }, refusals: refusals))
        let heartbeat = config.heartbeatSeconds
        let site = config.site

        /// An agent of the site loaded now, registered unless it is registering: every agent
        /// endpoint asks this first, so a certificate of a node the site lacks gets nowhere.
        @Sendable func siteAgent(_ context: CoordinatorContext, for action: String, registering: Bool = false)
            async throws
            -> PeerIdentity
        {
            let peer = try context.requirePeer([.agent], for: action)
            guard site.node(peer.name) != nil else {
                throw WireError(
                    .forbidden, .unknownNode,
                    "Node '\(AuditText.escape(peer.name))' is not in the site configuration; add a [nodes.\(AuditText.escape(peer.name))] table on the hub."
                )
            }
            if !registering, try await !catalog.isRegistered(peer.name) {
                throw WireError(
                    .conflict, .notRegistered, "Agent '\(peer.name)' must register before it may \(action).")
            }
            return peer
        }

        router.post("/v1/agents/register") { request, context in
            let peer = try await siteAgent(context, for: "register as an agent", registering: true)
            let body = try await request.decodeJSON(RegisterRequest.self)
            let now = clock.currentDate
            try await catalog.register(name: peer.name, role: peer.role, body, now: now)
            context.logger.info(
                "agent registered",
                metadata: ["scm.node": "\(peer.name)", "scm.version": "\(AuditText.escape(body.version, limit: 100))"])
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials))
        }
        router.post("/v1/agents/heartbeat") { request, context in
            // Registration is checked by the update itself, after the body.
            let peer = try await siteAgent(context, for: "send agent heartbeats", registering: true)
            let body = try await request.decodeJSON(HeartbeatRequest.self)
            let now = clock.currentDate
            guard
                try await catalog.heartbeat(
                    name: peer.name, diskFree: body.diskFree, agentClock: body.agentClock, now: now)
            else {
                throw WireError(
                    .conflict, .notRegistered, "Agent '\(peer.name)' must register before sending heartbeats.")
            }
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials))
        }
        router.get("/v1/nodes") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list nodes")
            // Every configured node, registered or not, and any registered one no longer configured.
            var nodes = try await catalog.nodes(now: clock.currentDate, onlineWithin: Double(3 * heartbeat))
            for i in nodes.indices { nodes[i].roles = site.node(nodes[i].name)?.roles.map(\.rawValue).sorted() }
            for node in site.nodes.values where !nodes.contains(where: { $0.name == node.name }) {
                nodes.append(
                    NodeStatus(
                        name: node.name, role: "agent", version: nil, storePath: nil, diskTotal: nil, diskFree: nil,
                        kinds: [], registeredAt: nil, lastHeartbeatAt: nil, online: false,
                        roles: node.roles.map(\.rawValue).sorted()))
            }
            return try JSONResponse.make(nodes.sorted { $0.name < $1.name })
        }
        let signals = coordinator.signals
        let desk = coordinator.desk
        let waits = coordinator.clock
        let leaseSeconds = config.leaseSeconds
        let stallSeconds = config.stallSeconds
        let maxWait = config.maxLeaseWaitSeconds
        let retrySeconds = config.retrySeconds
        router.post("/v1/tasks") { request, context in
            let peer = try context.requirePeer([.admin], for: "submit tasks")
            let body = try await request.decodeJSON(SubmitTaskRequest.self)
            let definition = try await Self.check(
                body, site: site, catalog: catalog, hasPurgeKey: config.purgeKey != nil)
            var request = body
            if body.kind == .verify, body.olderThanDays != nil || body.budgetBytes != nil {
                request.artifacts = try await catalog.verificationDue(
                    node: body.node, olderThan: Double(body.olderThanDays ?? 0) * 86400, budget: body.budgetBytes,
                    now: clock.currentDate)
                guard !request.artifacts!.isEmpty else {
                    throw WireError(
                        .unprocessableContent, .nothingDue,
                        "Every copy on '\(body.node)' was verified within \(body.olderThanDays ?? 0) days; nothing to verify."
                    )
                }
            }
            let task = try await catalog.submit(request, definition: definition, now: clock.currentDate)
            await signals.signal(body.node)
            try await audit(
                peer, context.logger, "POST /v1/tasks",
                "queued \(task.kind.rawValue) task \(task.id) for \(body.node)"
                    + (body.source.map { " (source \($0))" } ?? "")
                    + (body.artifacts.map { " naming \($0.count) copies" } ?? ""))
            return try JSONResponse.make(task, status: .created)
        }
        router.post("/v1/transfers") { request, context in
            let peer = try context.requirePeer([.admin], for: "order transfers")
            let body = try await request.decodeJSON(TransferRequest.self)
            let plan = try await desk.plan(body, operatorName: peer.name, now: clock.currentDate)
            try await audit(
                peer, context.logger, "POST /v1/transfers",
                "\(body.from) -> \(body.to)\(body.source.map { " (source \($0))" } ?? ""): queued tasks "
                    + (plan.queued.isEmpty ? "none" : plan.queued.map { "\($0.id)" }.joined(separator: ", "))
                    + ", \(plan.skipped.count) skipped")
            return try JSONResponse.make(plan, status: .created)
        }
        router.post("/v1/agents/copies") { request, context in
            let peer = try await siteAgent(context, for: "report copies")
            let body = try await request.decodeJSON(ArtifactReport.self, limit: maxResultBytes)
            guard !body.complete, body.deleted == nil else {
                throw WireError(
                    .badRequest, .malformedJSON,
                    "A copies report names the copies a node received; listings and deletions come with task results.")
            }
            // Believed only for the artifacts a transfer now leased is bringing to this node.
            let expected = try await catalog.leasedTransfers(to: peer.name)
            try await catalog.record(
                body, node: peer.name, authority: .receipt(paths: expected), now: clock.currentDate)
            return Response(status: .noContent)
        }
        router.get("/v1/artifacts") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list artifacts")
            let node = request.uri.queryParameters.get("node")
            let source = request.uri.queryParameters.get("source")
            return try await JSONResponse.make(try catalog.artifacts(node: node, source: source))
        }
        /// Logs an accepted admin request at notice and records it as an event.
        @Sendable func audit(_ peer: PeerIdentity, _ logger: Logger, _ request: String, _ detail: String) async throws {
            let event = try await catalog.recordEvent(
                actor: peer, request: request, detail: detail, now: clock.currentDate)
            logger.notice(
                "admin request accepted",
                metadata: [
                    "scm.actor": "\(event.actor)", "scm.serial": "\(event.serial)", "scm.request": "\(event.request)",
                    "scm.detail": "\(event.detail)", "scm.event": "\(event.id)",
                ])
        }
        router.get("/v1/events") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list events")
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100
            return try await JSONResponse.make(try catalog.events(limit: min(max(limit, 1), 10_000)))
        }
        router.get("/v1/tasks") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list tasks")
            return try await JSONResponse.make(try catalog.tasks())
        }
        router.post("/v1/tasks/lease") { request, context in
            let peer = try await siteAgent(context, for: "lease tasks")
            let body = try await request.decodeJSON(LeaseRequest.self)
            let deadline = clock.currentDate.addingTimeInterval(Double(min(max(body.waitSeconds, 0), maxWait)))
            while true {
                let ticket = await signals.ticket(for: peer.name)
                if let task = try await catalog.leaseNext(
                    for: peer.name, now: clock.currentDate, duration: leaseSeconds)
                {
                    if let why = await AgentRequirements.refusal(
                        kind: task.kind, agentVersion: try catalog.version(of: peer.name))
                    {
                        let failure = TaskFailure(code: .agentTooOld, message: "Task \(task.id): \(why).")
                        _ = try await Self.apply(task.id, catalog) {
                            (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                            try task.complete(
                                by: peer.name, token: task.fencingToken, now: clock.currentDate, failure: failure,
                                rule: .permanent
                            )
                        }
                        context.logger.warning(
                            "task refused to an old agent",
                            metadata: ["scm.task": "\(task.id)", "scm.node": "\(peer.name)", "scm.reason": "\(why)"])
                        await signals.finish(ticket, node: peer.name)
                        continue
                    }
                    await signals.finish(ticket, node: peer.name)
                    context.logger.debug(
                        "task leased",
                        metadata: [
                            "scm.task": "\(task.id)", "scm.node": "\(peer.name)", "scm.kind": "\(task.kind.rawValue)",
                            "scm.token": "\(task.fencingToken)", "scm.attempt": "\(task.attempts)",
                        ])
                    return try await JSONResponse.make(
                        LeaseResponse(task: try desk.equip(task, now: clock.currentDate)))
                }
                let left = deadline.timeIntervalSince(clock.currentDate)
                if left <= 0 {
                    await signals.finish(ticket, node: peer.name)
                    return try JSONResponse.make(LeaseResponse(task: nil))
                }
                await signals.wait(ticket, node: peer.name, atMost: left, clock: waits)
            }
        }
        router.post("/v1/tasks/:id/renew") { request, context in
            let peer = try await siteAgent(context, for: "renew leases")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(RenewRequest.self)
            let now = clock.currentDate
            let renewed = try await Self.apply(id, catalog, progress: body.progress) {
                (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                try task.renew(
                    by: peer.name, token: body.fencingToken, now: now, duration: leaseSeconds,
                    progressed: body.progressed,
                    stallLimit: stallSeconds)
            }
            context.logger.debug(
                "lease renewed",
                metadata: ["scm.task": "\(id)", "scm.node": "\(peer.name)", "scm.progressed": "\(body.progressed)"])
            // A fresh ticket or order with each renewal: they live only twice the lease.
            return try await JSONResponse.make(try desk.equip(renewed, now: now))
        }
        router.post("/v1/tasks/:id/result") { request, context in
            let peer = try await siteAgent(context, for: "report task results")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(ResultRequest.self, limit: maxResultBytes)
            let now = clock.currentDate
            let task = try await Self.apply(id, catalog, detail: body.detail) {
                (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                let failure = body.reportedFailure
                try task.complete(
                    by: peer.name, token: body.fencingToken, now: now, failure: failure,
                    rule: failure.map { RetryPolicy.rule(for: $0.code) } ?? .permanent, retryDelay: retrySeconds)
            }
            context.logger.debug(
                "task result",
                metadata: [
                    "scm.task": "\(id)", "scm.node": "\(peer.name)", "scm.state": "\(task.state.rawValue)",
                    "scm.code": "\(task.lastErrorCode?.rawValue ?? "-")",
                ])
            // Only the holder of the current lease gets here: its findings go to the catalog, as
            // far as what the task asked for vouches for them.
            if let report = body.artifacts {
                try await catalog.record(
                    report, node: peer.name, authority: Self.authority(of: task, node: peer.name), now: now)
                if task.kind == .verify { _ = try await desk.scheduleRepairs(report, node: peer.name, now: now) }
            }
            if task.state == .queued { await signals.signal(task.node) }  // A failure to retry.
            // A repair that failed for good is taken from the next verified copy, if any.
            if task.kind == .transfer, task.state == .failed, let order = task.transfer, order.purpose == .repair {
                _ = try await desk.repairAgain(order, now: now)
            }
            return try JSONResponse.make(task)
        }
        router.post("/v1/tasks/:id/handback") { request, context in
            let peer = try await siteAgent(context, for: "hand back tasks")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(HandBackRequest.self)
            let now = clock.currentDate
            let task = try await Self.apply(id, catalog) { (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                try task.handBack(by: peer.name, token: body.fencingToken, now: now)
            }
            await signals.signal(task.node)
            return try JSONResponse.make(task)
        }
        // Anything else: an unknown version is named as such, an unknown path under v1 too.
        router.get("**") { request, _ -> Response in throw unknownPath(request) }
        router.post("**") { request, _ -> Response in throw unknownPath(request) }

        var appConfig = ApplicationConfiguration(
            address: .hostname(config.host, port: config.port), serverName: "scm-backup")
        appConfig.backlog = 256
        return Application(
            // HTTP/2 where the client offers it (ALPN "h2"), HTTP/1.1 otherwise.
            router: router,
            server: Listener.http2(
                tls: try tlsConfiguration(config), limits: config.limits, counter: ConnectionCounter(),
                refusals: refusals),
            configuration: appConfig,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
            logger: logger)
    }

    /// What a task's result may tell the catalog, from what the task asked (see ``ReportAuthority``).
    static func authority(of task: TaskInfo, node: String) -> ReportAuthority {
        switch task.kind {
        case .backup:
            let sources = [task.definition?.name, task.definition?.svnSource?.name].compactMap { $0 }
            return .originBackup(sources: Set(sources))
        case .verify: return .verify
        case .inventory: return .inventory
        case .purge: return .purge(paths: Set(task.artifacts ?? []))
        case .transfer:
            guard let order = task.transfer, order.receiver == node else { return .unsolicited }
            return .receipt(paths: [order.path])
        }
    }

    /// Checks a submitted task against the site and the catalog; returns the definition of a
    /// backup's source. Operators name configured nodes, sources and catalogued copies only.
    static func check(_ body: SubmitTaskRequest, site: SiteConfiguration, catalog: Catalog, hasPurgeKey: Bool)
        async throws -> SourceDefinition?
    {
        guard let node = site.node(body.node) else {
            throw WireError(
                .unprocessableContent, .unknownNode,
                "Node '\(body.node)' is not in the site configuration; no task can be queued for it.")
        }
        switch body.kind {
        case .backup:
            guard let name = body.source else {
                throw WireError(.badRequest, .malformedJSON, "A backup task needs field \"source\".")
            }
            guard let definition = node.sources[name] else {
                let known = node.sources.keys.sorted().joined(separator: ", ")
                throw WireError(
                    .unprocessableContent, .unknownSource,
                    "Node '\(node.name)' has no source '\(name)' in the site configuration"
                        + (known.isEmpty ? "." : " (it has: \(known))."))
            }
            return definition
        case .purge:
            guard let paths = body.artifacts, !paths.isEmpty else {
                throw WireError(.badRequest, .malformedJSON, "A purge task needs field \"artifacts\" (paths).")
            }
            guard hasPurgeKey else {
                throw WireError(
                    .serviceUnavailable, .noPurgeKey,
                    "The coordinator has no purge_key configured, so it cannot sign purge orders; add purge_key to [coordinator]."
                )
            }
            let held = try await catalog.copyStates(node: node.name)
            if let missing = paths.first(where: { held[$0] == nil }) {
                throw WireError(
                    .unprocessableContent, .unknownArtifact,
                    "The catalog knows no copy '\(missing)' on node '\(node.name)'; run an inventory of it first.")
            }
            // Guarantee 4: a mutant is quarantined and repaired, never purged.
            if let suspect = paths.first(where: { held[$0]?.failedVerification == true }) {
                throw WireError(
                    .unprocessableContent, .mutantCopy,
                    "Copy '\(suspect)' on node '\(node.name)' failed verification (\(held[suspect]?.rawValue ?? "?")): it is kept for quarantine and repair, not purged."
                )
            }
            return nil
        case .verify, .inventory:
            return nil
        case .transfer:
            throw WireError(
                .unprocessableContent, .useTransfers,
                "Transfers are ordered with POST /v1/transfers (scm-backup transfer), which signs their tickets.")
        }
    }

    /// Applies a life-cycle change to a task: 404 for an unknown task, 409 with the refusal's
    /// code for a stale token, another holder, an expired lease or a finished task.
    static func apply(
        _ id: Int64, _ catalog: Catalog, progress: TaskProgress? = nil, detail: String? = nil,
        _ change: @escaping @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
    ) async throws -> TaskInfo {
        do {
            guard let task = try await catalog.updateTask(id, progress: progress, detail: detail, change) else {
                throw WireError(.notFound, .unknownTask, "There is no task \(id).")
            }
            return task
        } catch let refusal as TaskLifecycle.Refusal {
            throw WireError(.conflict, refusal.code, "Task \(id): \(refusal.explanation).")
        }
    }

    static func unknownPath(_ request: Request) -> WireError {
        let first = request.uri.path.split(separator: "/").first.map(String.init) ?? ""
        if first.hasPrefix("v"), Int(first.dropFirst()) != nil, !versions.contains(first) {
            return WireError(
                .notFound, .unsupportedVersion,
                "API version \(first) is not supported; this coordinator speaks \(versions.joined(separator: ", ")).")
        }
        return WireError(.notFound, .unknownEndpoint, "No endpoint \(request.method) \(request.uri.path).")
    }
}
