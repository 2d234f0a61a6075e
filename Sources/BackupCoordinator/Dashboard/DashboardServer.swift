import BackupCore
import BackupHTTP
import BackupProtocol
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import X509

/// The request context of the dashboard: the connection (for a client certificate) and who
/// the caller is, when it showed a certificate.
public struct DashboardContext: PeerContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public var peer: PeerIdentity?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The dashboard reads no bodies.
    public var maxUploadSize: Int { 0 }
}

/// The dashboard's listener (``DashboardSettings``): pages, their JSON, `/metrics`; never a
/// write. Documented in `Protocol/dashboard.md`.
public enum DashboardServer {
    /// The headers every answer carries: a policy that allows only our own style sheet and
    /// icon (no script at all, no frame, no form), no sniffing, no referrer, no caching.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-store",
    ]
    /// The longest request target answered (a longer one is a 414).
    static let maxTarget = 2048

    /// The TLS of the dashboard off loopback: the hub's certificate; a client certificate is
    /// optional (a login may stand in for it) but verified against the site CA when shown.
    static func tlsConfiguration(_ config: CoordinatorConfiguration) throws -> TLSConfiguration {
        var tls = try ServerTLS.configuration(
            certificate: config.certificate, privateKey: config.privateKey, ca: config.caCertificate)
        tls.certificateVerification = .optionalVerification
        return tls
    }

    public static func makeApplication(
        _ coordinator: Coordinator, settings: DashboardSettings,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let pages = try DashboardPages()
        let data = coordinator.dashboardData
        let wallClock = coordinator.wallClock
        let catalog = coordinator.catalog
        let router = Router(context: DashboardContext.self)
        router.add(middleware: DashboardErrorMiddleware(pages: pages, wallClock: wallClock))
        let passwords = try settings.passwordFile.map { try PasswordFile.load($0) }
        let revocations = coordinator.revocations
        router.add(
            middleware: DashboardAuthMiddleware(
                open: settings.isOpen, passwords: passwords,
                throttle: LoginThrottle(limit: settings.loginFailuresPerMinute),
                isRevoked: { try revocations.current().isRevoked($0) }, refusals: coordinator.refusals,
                wallClock: wallClock))
        @Sendable func firing() async throws -> Int {
            try await catalog.alertBook().list(all: false).filter { $0.phase == .firing }.count
        }
        router.get("/") { request, _ in
            let status = try await data.site()
            if wantsJSON(request) { return try page(JSONResponse.make(status)) }
            return html(pages.site(status, firing: try await firing()))
        }
        // One parameter name at each level: the router's tree shares the first with /sources/:name.
        router.get("/sources/:name/:source") { request, context in
            let origin = try name(context, "name")
            let source = try name(context, "source")
            guard let found = try await data.source(origin: origin, source: source) else {
                throw WireError(
                    .notFound, .unknownSource,
                    "The site has no source '\(AuditText.escape(source))' on node '\(AuditText.escape(origin))'.")
            }
            if wantsJSON(request) { return try page(JSONResponse.make(found)) }
            return html(pages.source(found, firing: try await firing(), now: wallClock.currentDate))
        }
        // A bare source name: its page when one node has it.
        router.get("/sources/:name") { request, context in
            let source = try name(context, "name")
            let origins = data.origins(of: source)
            guard origins.count == 1, let origin = origins.first,
                let found = try await data.source(origin: origin, source: source)
            else {
                throw WireError(
                    origins.isEmpty ? .notFound : .conflict, origins.isEmpty ? .unknownSource : .ambiguousSource,
                    origins.isEmpty
                        ? "The site has no source '\(AuditText.escape(source))'."
                        : "Source '\(AuditText.escape(source))' is on nodes \(origins.joined(separator: ", ")): open /sources/NODE/\(AuditText.escape(source))."
                )
            }
            if wantsJSON(request) { return try page(JSONResponse.make(found)) }
            return html(pages.source(found, firing: try await firing(), now: wallClock.currentDate))
        }
        router.get("/nodes/:name") { request, context in
            let node = try name(context, "name")
            guard let found = try await data.node(node) else {
                throw WireError(.notFound, .unknownNode, "The site has no node '\(AuditText.escape(node))'.")
            }
            if wantsJSON(request) { return try page(JSONResponse.make(found)) }
            return html(pages.node(found, firing: try await firing(), now: wallClock.currentDate))
        }
        router.get("/runs") { request, _ in
            let runs = try await data.runList()
            if wantsJSON(request) { return try page(JSONResponse.make(runs)) }
            return html(pages.runs(runs, firing: try await firing(), now: wallClock.currentDate))
        }
        router.get("/runs/:id") { request, context in
            let text = try context.parameters.require("id")
            guard let id = Int64(text), id > 0 else {
                throw WireError(.badRequest, .invalidArgument, "'\(AuditText.escape(text))' is not a run id.")
            }
            let run = try await data.run(id)
            if wantsJSON(request) { return try page(JSONResponse.make(run)) }
            return html(pages.run(run, firing: try await firing(), now: wallClock.currentDate))
        }
        router.get("/alerts") { request, _ in
            let alerts = try await data.alerts()
            if wantsJSON(request) { return try page(JSONResponse.make(alerts)) }
            return html(
                pages.alerts(
                    alerts, firing: alerts.filter { $0.phase == .firing }.count, now: wallClock.currentDate))
        }
        let metrics = coordinator.metrics
        router.get("/metrics") { _, _ in
            var headers = securityHeaders
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try await metrics.scrape())))
        }
        router.get("/style.css") { _, _ in
            var headers = securityHeaders
            headers[.contentType] = "text/css; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPages.styleSheet)))
        }
        router.get("/favicon.svg") { _, _ in
            var headers = securityHeaders
            headers[.contentType] = "image/svg+xml"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPages.favicon)))
        }
        router.get("**") { request, _ -> Response in
            throw WireError(.notFound, .unknownEndpoint, "No page \(AuditText.escape(request.uri.path, limit: 200)).")
        }

        let config = coordinator.configuration
        let server =
            settings.isOpen
            ? Listener.plainHTTP1(limits: settings.limits, counter: ConnectionCounter(), refusals: coordinator.refusals)
            : Listener.http1(
                tls: try tlsConfiguration(config), limits: settings.limits, counter: ConnectionCounter(),
                refusals: coordinator.refusals)
        return Application(
            router: router, server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port), serverName: "scm-backup-dashboard"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? settings.port) },
            logger: coordinator.logger)
    }

    /// A path parameter percent-decoded; one that is not UTF-8 once decoded is a 400.
    static func name(_ context: DashboardContext, _ parameter: String) throws -> String {
        let raw = try context.parameters.require(parameter)
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw WireError(.badRequest, .invalidArgument, "'\(AuditText.escape(raw))' is not a name.")
        }
        return decoded
    }

    static func wantsJSON(_ request: Request) -> Bool {
        request.headers[.accept].map { $0.contains("application/json") } ?? false
    }

    static func html(_ text: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func page(_ response: Response) -> Response {
        var response = response
        for field in securityHeaders { response.headers[field.name] = field.value }
        return response
    }
}

/// Who may read: everyone on loopback; elsewhere a site certificate of role operator or admin,
/// or a login from the password file. A certificate of any other role is refused even with a
/// password, and failed logins are throttled per address (``LoginThrottle``).
struct DashboardAuthMiddleware: RouterMiddleware {
    typealias Context = DashboardContext
    let open: Bool
    let passwords: PasswordFile?
    let throttle: LoginThrottle
    let isRevoked: @Sendable (String) throws -> Bool
    let refusals: RefusalLog
    let wallClock: any WallClock

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if (request.uri.string.utf8.count) > DashboardServer.maxTarget {
            throw WireError(
                .uriTooLong, .invalidArgument,
                "The request target is longer than \(DashboardServer.maxTarget) bytes.")
        }
        if open { return try await next(request, context) }
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        var context = context
        do {
            if let certificate = try await IdentityMiddleware<Context>.peerCertificate(context.channel) {
                let peer: PeerIdentity
                do {
                    peer = try PeerIdentity(certificate: try Certificate(derEncoded: try certificate.toDERBytes()))
                } catch {
                    throw WireError(.forbidden, .unknownIdentity, "The client certificate names no scm-backup role.")
                }
                if try isRevoked(peer.serial) {
                    throw WireError(.forbidden, .certificateRevoked, "Certificate \(peer.serial) is revoked.")
                }
                context.peer = peer
                _ = try context.requirePeer([.operator, .admin], for: "read the dashboard")
                return try await next(request, context)
            }
            try login(request, address: address)
            return try await next(request, context)
        } catch let error as WireError {
            refusals.refused(
                peer: context.peer.map { "\($0.role.rawValue) \($0.name)" } ?? address, code: error.code,
                logger: context.logger,
                detail: "GET \(AuditText.escape(request.uri.path, limit: 200)): \(error.message)")
            throw error
        }
    }

    /// HTTP Basic against the password file.
    func login(_ request: Request, address: String) throws {
        let now = wallClock.currentDate
        guard let passwords else {
            throw WireError(
                .unauthorized, .loginRequired,
                "The dashboard needs a site certificate of role operator or admin (no password file is configured).")
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic ") else {
            throw WireError(.unauthorized, .loginRequired, "Log in, or show an operator's certificate.")
        }
        if let wait = throttle.retryAfter(address, now: now) {
            throw WireError(
                .tooManyRequests, .tooManyLogins,
                "Too many failed logins from \(address); try again in \(wait) s.")
        }
        let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard encoded.utf8.count <= 1024, let decoded = Data(base64Encoded: encoded),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else {
            throw WireError(.badRequest, .loginFailed, "The Authorization header is not Basic base64(user:password).")
        }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        let key = SHA256.hash(data: Array(text.utf8))
        if throttle.remembered(key, now: now) { return }
        guard passwords.verify(user: user, password: password) else {
            throttle.failed(address, now: now)
            throw WireError(.unauthorized, .loginFailed, "Unknown user or wrong password.")
        }
        throttle.remember(key, now: now)
    }
}

/// Errors as the caller asked: a JSON error body for `Accept: application/json` (and for
/// `/metrics`), an HTML page otherwise; a login refusal carries `WWW-Authenticate`.
struct DashboardErrorMiddleware: RouterMiddleware {
    typealias Context = DashboardContext
    let pages: DashboardPages
    let wallClock: any WallClock
    let inner = ErrorMiddleware<DashboardContext>(revealsInternals: false)

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let wire: WireError
        do {
            return try await next(request, context)
        } catch let error as WireError {
            wire = error
        } catch {
            wire = inner.answer(for: error, request: request, logger: context.logger)
        }
        var response: Response
        if DashboardServer.wantsJSON(request) || request.uri.path == "/metrics" {
            response = try wire.response(from: request, context: context)
        } else {
            response = DashboardServer.html(
                pages.error(status: Int(wire.status.code), message: wire.message, now: wallClock.currentDate))
            response.status = wire.status
        }
        response = DashboardServer.page(response)
        if wire.code == .loginRequired || wire.code == .loginFailed {
            response.headers[.wwwAuthenticate] = "Basic realm=\"scm-backup dashboard\", charset=\"UTF-8\""
        }
        if wire.code == .tooManyLogins { response.headers[.retryAfter] = "60" }
        return response
    }
}
