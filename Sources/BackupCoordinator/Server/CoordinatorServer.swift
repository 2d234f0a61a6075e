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

    /// Builds the API server over `coordinator`'s domain objects: the error and identity
    /// middleware, then one controller per resource, then the catch-alls; `onRunning` receives
    /// the port it listens on.
    public static func makeApplication(
        _ coordinator: Coordinator, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let config = coordinator.configuration
        let router = Router(context: CoordinatorContext.self)
        // First, so that every error below it leaves as JSON; every client here holds a site certificate.
        router.add(middleware: ErrorMiddleware<CoordinatorContext>(revealsInternals: true))
        router.add(
            middleware: CatalogDamageMiddleware<CoordinatorContext>(
                damage: coordinator.catalog.damage, signals: coordinator.signals))
        let revocations = coordinator.revocations
        router.add(
            middleware: IdentityMiddleware<CoordinatorContext>(
                isRevoked: { try revocations.current().isRevoked($0) }, refusals: coordinator.refusals))
        AgentsController(coordinator: coordinator).addRoutes(to: router)
        TasksController(coordinator: coordinator).addRoutes(to: router)
        TransfersController(coordinator: coordinator).addRoutes(to: router)
        CatalogController(coordinator: coordinator).addRoutes(to: router)
        RunsController(coordinator: coordinator).addRoutes(to: router)
        StatusController(coordinator: coordinator).addRoutes(to: router)
        PurgeController(coordinator: coordinator).addRoutes(to: router)
        AlertsController(coordinator: coordinator).addRoutes(to: router)
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
                refusals: coordinator.refusals),
            configuration: appConfig,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
            logger: coordinator.logger)
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
