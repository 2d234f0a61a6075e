import BackupProtocol
import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import X509

/// Reads the caller's identity from its verified TLS certificate and refuses revoked ones.
/// The TLS layer has already refused connections without a certificate from the site CA.
struct IdentityMiddleware: RouterMiddleware {
    typealias Context = CoordinatorContext
    let revocations: RevocationSource

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var context = context
        guard let certificate = try await Self.peerCertificate(context.channel) else {
            throw WireError(.unauthorized, "no-certificate", "A client certificate from the site CA is required.")
        }
        let parsed: PeerIdentity
        do {
            parsed = try PeerIdentity(certificate: try Certificate(derEncoded: try certificate.toDERBytes()))
        } catch {
            throw WireError(
                .forbidden, "unknown-identity", "The client certificate names no scm-backup node or role: \(error).")
        }
        if try revocations.current().isRevoked(parsed.serial) {
            throw WireError(
                .forbidden, "certificate-revoked", "Certificate \(parsed.serial) of '\(parsed.name)' is revoked.")
        }
        context.peer = parsed
        return try await next(request, context)
    }

    /// The verified client certificate of the connection a request came on. An HTTP/1.1
    /// request's channel is the TLS connection itself; an HTTP/2 request's is a stream whose
    /// parent is the TLS connection.
    static func peerCertificate(_ channel: any Channel) async throws -> NIOSSLCertificate? {
        // containsHandler fails when the handler is absent: then this is an HTTP/2 stream.
        if (try? await channel.pipeline.containsHandler(type: NIOSSLServerHandler.self).get()) != nil {
            return try await channel.nioSSL_peerCertificate().get()
        }
        guard let connection = channel.parent else { return nil }
        return try await connection.nioSSL_peerCertificate().get()
    }
}

/// The revocation list, re-read when its file changes.
final class RevocationSource: Sendable {
    private let path: String?
    private let cache = LockedBox<(Date?, RevocationList)>((nil, RevocationList(serials: [], updated: .distantPast)))

    init(path: String?) { self.path = path }

    func current() throws -> RevocationList {
        guard let path else { return RevocationList(serials: [], updated: .distantPast) }
        let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        if let cached = cache.withLock({ $0.0 == modified ? $0.1 : nil }) { return cached }
        let list = try RevocationList.read(path)
        cache.withLock { $0 = (modified, list) }
        return list
    }
}

/// A value behind a lock, for the few pieces of state shared by request handlers.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // Safe: `value` is only read or written while `lock` is held.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
