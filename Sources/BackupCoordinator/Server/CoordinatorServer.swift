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
