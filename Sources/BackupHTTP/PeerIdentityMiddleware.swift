import BackupCore
import BackupProtocol
import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import X509

/// A request context that keeps the connection, so that the identity middleware can read the
/// peer's certificate, and the identity it found there. The coordinator's context and the
/// agents' data port context conform.
public protocol PeerContext: RequestContext {
    /// The channel the request came on (the TLS connection, or an HTTP/2 stream of it).
    var channel: any Channel { get }
    /// Who sent the request, from its verified certificate (set by ``IdentityMiddleware``).
    var peer: PeerIdentity? { get set }
}

extension PeerContext {
    /// The peer, if its role is one of `roles`; otherwise a 403 naming the role needed.
    public func requirePeer(_ roles: Set<NodeRole>, for action: String) throws -> PeerIdentity {
        guard let peer else {
            throw WireError(.unauthorized, .noCertificate, "A client certificate from the site CA is required.")
        }
        guard roles.contains(peer.role) else {
            let needed = roles.map(\.rawValue).sorted().map { ("aeiou".contains($0.first!) ? "an " : "a ") + $0 }
                .joined(separator: " or ")
            throw WireError(
                .forbidden, .wrongRole,
                "\(peer.role.rawValue) certificate '\(peer.name)' may not \(action); that needs \(needed) certificate."
            )
        }
        return peer
    }
}

/// Reads the caller's identity from its verified TLS certificate and refuses revoked ones.
/// The TLS layer has already refused connections without a certificate from the site CA.
/// Every refusal, its own or a handler's (4xx, 503), goes to the ``RefusalLog``.
public struct IdentityMiddleware<Context: PeerContext>: RouterMiddleware {
    /// Whether a serial (lower-case hex) is revoked; throws when the list cannot be read.
    let isRevoked: @Sendable (String) throws -> Bool
    let refusals: RefusalLog?

    public init(isRevoked: @escaping @Sendable (String) throws -> Bool, refusals: RefusalLog? = nil) {
        self.isRevoked = isRevoked
        self.refusals = refusals
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let parsed: PeerIdentity
        do {
            parsed = try await identity(context)
        } catch let error as WireError {
            // Refused before any handler: the connection is named by its address.
            refusals?.refused(
                peer: context.channel.remoteAddress?.ipAddress ?? "unknown", code: error.code, logger: context.logger,
                detail: "\(request.method) \(request.uri.path): \(error.message)")
            throw error
        }
        var context = context
        context.peer = parsed
        do {
            return try await next(request, context)
        } catch let error as WireError {
            let status = error.status.code
            if (400..<500).contains(status) || status == 503 {
                refusals?.refused(
                    peer: "\(parsed.role.rawValue) \(parsed.name)", code: error.code, logger: context.logger,
                    detail: "\(request.method) \(request.uri.path): \(error.message)")
            }
            throw error
        }
    }

    /// The verified, unrevoked identity of the connection's certificate.
    private func identity(_ context: Context) async throws -> PeerIdentity {
        guard let certificate = try await Self.peerCertificate(context.channel) else {
            throw WireError(.unauthorized, .noCertificate, "A client certificate from the site CA is required.")
        }
        let parsed: PeerIdentity
        do {
            parsed = try PeerIdentity(certificate: try Certificate(derEncoded: try certificate.toDERBytes()))
        } catch {
            throw WireError(
                .forbidden, .unknownIdentity, "The client certificate names no scm-backup node or role: \(error).")
        }
        if try isRevoked(parsed.serial) {
            throw WireError(
                .forbidden, .certificateRevoked, "Certificate \(parsed.serial) of '\(parsed.name)' is revoked.")
        }
        return parsed
    }

    /// The verified client certificate of the connection a request came on. An HTTP/1.1
    /// request's channel is the TLS connection itself; an HTTP/2 request's is a stream whose
    /// parent is the TLS connection.
    public static func peerCertificate(_ channel: any Channel) async throws -> NIOSSLCertificate? {
        // containsHandler fails when the handler is absent: then this is an HTTP/2 stream.
        if (try? await channel.pipeline.containsHandler(type: NIOSSLServerHandler.self).get()) != nil {
            return try await channel.nioSSL_peerCertificate().get()
        }
        guard let connection = channel.parent else { return nil }
        return try await connection.nioSSL_peerCertificate().get()
    }
}

/// The TLS settings of our servers (the coordinator, the agents' data ports).
public enum ServerTLS {
    /// A client certificate is required and verified against the site CA; its address is not
    /// checked (peers are known by name, see STACK-NOTES). TLS 1.2 at least.
    public static func configuration(certificate: String, privateKey: String, ca: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem)))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv12
        return tls
    }
}
