import BackupProtocol
import Foundation
import Hummingbird
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

    public init(
        certificate: String, privateKey: String, caCertificate: String, revocationList: String?, database: String
    ) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.caCertificate = caCertificate
        self.revocationList = revocationList
        self.database = database
    }
}

/// The coordinator's HTTPS server: mutual TLS with the site CA, identities from certificates,
/// endpoints under `/v1` (see `Protocol/`).
public enum CoordinatorServer {
    /// The largest request body accepted. The default is 1 MiB.
    public static let maxBodyBytes = 1 << 20
    /// The API versions this coordinator speaks.
    public static let versions = ["v1"]

    /// The server's TLS settings: a client certificate is required and verified against the
    /// site CA; its address is not checked (agents are known by name, see STACK-NOTES).
    static func tlsConfiguration(_ config: CoordinatorConfiguration) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(config.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: config.privateKey, format: .pem)))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(config.caCertificate))
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    /// Builds the application; `onRunning` receives the port it listens on.
    public static func makeApplication(
        _ config: CoordinatorConfiguration, catalog: Catalog, logger: Logger = Logger(label: "scm-backup.coordinator"),
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router(context: CoordinatorContext.self)
        let revocations = RevocationSource(path: config.revocationList)
        router.add(middleware: IdentityMiddleware(revocations: revocations))
        let heartbeat = config.heartbeatSeconds

        router.post("/v1/agents/register") { request, context in
            let peer = try context.requirePeer([.agent], for: "register as an agent")
            let body = try await request.decodeJSON(RegisterRequest.self)
            let now = Date()
            try catalog.register(name: peer.name, role: peer.role, body, now: now)
            logger.info("agent registered", metadata: ["scm.node": "\(peer.name)", "scm.version": "\(body.version)"])
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials))
        }
        router.post("/v1/agents/heartbeat") { request, context in
            let peer = try context.requirePeer([.agent], for: "send agent heartbeats")
            let body = try await request.decodeJSON(HeartbeatRequest.self)
            let now = Date()
            guard try catalog.heartbeat(name: peer.name, diskFree: body.diskFree, now: now) else {
                throw WireError(
                    .conflict, "not-registered", "Agent '\(peer.name)' must register before sending heartbeats.")
            }
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials))
        }
        router.get("/v1/nodes") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list nodes")
            return try JSONResponse.make(try catalog.nodes(now: Date(), onlineWithin: Double(3 * heartbeat)))
        }
        let signals = TaskSignals()
        let leaseSeconds = config.leaseSeconds
        let stallSeconds = config.stallSeconds
        let maxWait = config.maxLeaseWaitSeconds
        router.post("/v1/tasks") { request, context in
            let peer = try context.requirePeer([.admin], for: "submit tasks")
            let body = try await request.decodeJSON(SubmitTaskRequest.self)
            guard try catalog.nodes(now: Date(), onlineWithin: 0).contains(where: { $0.name == body.node }) else {
                throw WireError(
                    .unprocessableContent, "unknown-node",
                    "Node '\(body.node)' has never registered; no task can be queued for it.")
            }
            if body.kind == .backup && body.source == nil {
                throw WireError(.badRequest, "malformed-json", "A backup task needs field \"source\".")
            }
            let task = try catalog.submit(body, now: Date())
            await signals.signal(body.node)
            logger.info(
                "task queued",
                metadata: ["scm.task": "\(task.id)", "scm.node": "\(body.node)", "scm.operator": "\(peer.name)"])
            return try JSONResponse.make(task, status: .created)
        }
        router.get("/v1/tasks") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list tasks")
            return try JSONResponse.make(try catalog.tasks())
        }
        router.post("/v1/tasks/lease") { request, context in
            let peer = try context.requirePeer([.agent], for: "lease tasks")
            let body = try await request.decodeJSON(LeaseRequest.self)
            let deadline = Date().addingTimeInterval(Double(min(max(body.waitSeconds, 0), maxWait)))
            while true {
                let ticket = await signals.ticket(for: peer.name)
                if let task = try catalog.leaseNext(for: peer.name, now: Date(), duration: leaseSeconds) {
                    await signals.finish(ticket, node: peer.name)
                    return try JSONResponse.make(LeaseResponse(task: task))
                }
                let left = deadline.timeIntervalSinceNow
                if left <= 0 {
                    await signals.finish(ticket, node: peer.name)
                    return try JSONResponse.make(LeaseResponse(task: nil))
                }
                await signals.wait(ticket, node: peer.name, atMost: left)
            }
        }
        router.post("/v1/tasks/:id/renew") { request, context in
            let peer = try context.requirePeer([.agent], for: "renew leases")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(RenewRequest.self)
            let now = Date()
            return try JSONResponse.make(
                try Self.apply(id, catalog) { (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                    try task.renew(
                        by: peer.name, token: body.fencingToken, now: now, duration: leaseSeconds,
                        progressed: body.progressed,
                        stallLimit: stallSeconds)
                })
        }
        router.post("/v1/tasks/:id/result") { request, context in
            let peer = try context.requirePeer([.agent], for: "report task results")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(ResultRequest.self)
            let now = Date()
            let task = try Self.apply(id, catalog) { (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
                try task.complete(by: peer.name, token: body.fencingToken, now: now, error: body.error)
            }
            if task.state == "queued" { await signals.signal(task.node) }  // A failure to retry.
            return try JSONResponse.make(task)
        }
        router.post("/v1/tasks/:id/handback") { request, context in
            let peer = try context.requirePeer([.agent], for: "hand back tasks")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(HandBackRequest.self)
            let now = Date()
            let task = try Self.apply(id, catalog) { (task: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in
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
            router: router, server: try .tls(.http1(), tlsConfiguration: try tlsConfiguration(config)),
            configuration: appConfig,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) }, logger: logger)
    }

    /// Applies a life-cycle change to a task: 404 for an unknown task, 409 with the refusal's
    /// code for a stale token, another holder, an expired lease or a finished task.
    static func apply(
        _ id: Int64, _ catalog: Catalog, _ change: @Sendable (inout TaskLifecycle) throws(TaskLifecycle.Refusal) -> Void
    ) throws -> TaskInfo {
        do {
            guard let task = try catalog.updateTask(id, change) else {
                throw WireError(.notFound, "unknown-task", "There is no task \(id).")
            }
            return task
        } catch let refusal as TaskLifecycle.Refusal {
            throw WireError(.conflict, refusal.rawValue, "Task \(id): \(refusal.explanation).")
        }
    }

    static func unknownPath(_ request: Request) -> WireError {
        let first = request.uri.path.split(separator: "/").first.map(String.init) ?? ""
        if first.hasPrefix("v"), Int(first.dropFirst()) != nil, !versions.contains(first) {
            return WireError(
                .notFound, "unsupported-version",
                "API version \(first) is not supported; this coordinator speaks \(versions.joined(separator: ", ")).")
        }
        return WireError(.notFound, "unknown-endpoint", "No endpoint \(request.method) \(request.uri.path).")
    }
}
