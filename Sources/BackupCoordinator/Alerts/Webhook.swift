import AsyncHTTPClient
import BackupCore
import BackupProtocol
import Crypto
import Foundation
import NIOCore

/// The JSON webhook channel (`[alerts.webhook] url_file`, `secret_file`): each notice is POSTed
/// as ``WebhookNotice`` with `X-SCM-Backup-Timestamp: <unix seconds>` and
/// `X-SCM-Backup-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>`,
/// so that the receiver can tell it from a forgery and a replay. TLS is verified, redirects are
/// not followed, each attempt has 10 s, three attempts with 1 s and 2 s between. The secret
/// file must not be readable by group or others.
public enum Webhook {
    /// The body of one POST.
    public struct WebhookNotice: Codable, Sendable, Equatable {
        public var format = "scm-backup-alert/1"
        public var kind: String
        public var alert: AlertInfo
        public var folded: [AlertInfo]
        public var sentAt: Date
    }

    /// One client for the process's life (never shut down: it lives as long as the hub), that
    /// does not follow redirects.
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(10))))

    public static let signatureHeader = "X-SCM-Backup-Signature"
    public static let timestampHeader = "X-SCM-Backup-Timestamp"

    /// `sha256=<hex>` of `"<timestamp>.<body>"`.
    public static func signature(body: Data, timestamp: Int, secret: Data) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Reads a secret file, refusing one that group or others may read.
    static func secret(_ path: String) throws -> Data {
        guard let status = try FileSystem.linkStatus(path) else {
            throw BackupError(.configInvalid, "The webhook secret file '\(path)' does not exist.")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw BackupError(
                .configInvalid,
                "The webhook secret file '\(path)' is readable by group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it."
            )
        }
        let bytes = Data(try FileSystem.readSmallFile(path, limit: 4096))
        let trimmed = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw BackupError(.configInvalid, "The webhook secret file '\(path)' is empty.") }
        return Data(trimmed.utf8)
    }

    /// POSTs `notice`; the failure (after three attempts), or nil.
    static func send(
        _ notice: AlertBook.Notice, urlFile: String, secretFile: String, now: Date
    ) async -> String? {
        do {
            let text = String(decoding: try FileSystem.readSmallFile(urlFile, limit: 4096), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw BackupError(.configInvalid, "'\(urlFile)' holds no http(s) URL.")
            }
            let secret = try secret(secretFile)
            let body = try WireJSON.encoder().encode(
                WebhookNotice(kind: notice.kind.rawValue, alert: notice.alert, folded: notice.folded, sentAt: now))
            var last: any Error = BackupError(.io, "not sent")
            for attempt in 1...3 {
                let timestamp = Int(Date().timeIntervalSince1970)
                var request = HTTPClientRequest(url: text)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "User-Agent", value: "scm-backup-hub")
                request.headers.add(name: timestampHeader, value: "\(timestamp)")
                request.headers.add(
                    name: signatureHeader, value: signature(body: body, timestamp: timestamp, secret: secret))
                request.body = .bytes(ByteBuffer(bytes: body))
                do {
                    let response = try await client.execute(request, timeout: .seconds(10))
                    _ = try await response.body.collect(upTo: 64 << 10)
                    guard (200..<300).contains(response.status.code) else {
                        throw BackupError(
                            .io, "the webhook answered \(response.status.code) (redirects are not followed)")
                    }
                    return nil
                } catch {
                    last = error
                    if attempt < 3 { try await Task.sleep(for: .seconds(attempt)) }
                }
            }
            throw last
        } catch {
            // The URL may hold a token: only its file is named.
            return "webhook (the URL in '\(urlFile)'): \(error)"
        }
    }
}
