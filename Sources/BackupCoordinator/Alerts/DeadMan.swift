import AsyncHTTPClient
import BackupCore
import BackupProtocol
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// What the alert channels themselves report: the last failure of each (`heartbeat`), which
/// the alert service raises as `channel-failing`.
public final class ChannelHealth: Sendable {
    private let failures = LockedBox<[String: String]>([:])
    public init() {}
    func fail(_ channel: String, _ error: String) { failures.withLock { $0[channel] = error } }
    func succeed(_ channel: String) { failures.withLock { _ = $0.removeValue(forKey: channel) } }
    var current: [String: String] { failures.withLock { $0 } }
}

/// The hub's dead-man heartbeat: every `heartbeat_minutes` a GET of the URL in `[alerts.heartbeat]
/// url_file` (an outside monitor's, e.g. a healthchecks service), so that a hub that stopped is
/// noticed by someone else. TLS is verified against the system's trust store, redirects are not
/// followed, each attempt has 10 s; a failure is logged and raised as `channel-failing`.
public struct DeadMan: Service {
    let sites: SiteSource
    let clock: any Clock<Duration>
    let health: ChannelHealth
    let logger: Logger

    public func run() async throws {
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(10))))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let policy = sites.current.alerts
                if let file = policy.heartbeatURLFile { await ping(file, client: client) }
                // Cancelled: shutting down.
                do { try await clock.sleep(for: .milliseconds(Int64(policy.heartbeatSeconds * 1000))) } catch { break }
            }
        }
        try await client.shutdown()
    }

    func ping(_ file: String, client: HTTPClient) async {
        do {
            let text = String(decoding: try FileSystem.readSmallFile(file, limit: 4096), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw BackupError(.configInvalid, "'\(file)' holds no http(s) URL.")
            }
            var request = HTTPClientRequest(url: text)
            request.headers.add(name: "User-Agent", value: "scm-backup-hub")
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 64 << 10)
            guard (200..<300).contains(response.status.code) else {
                throw BackupError(.io, "the monitor answered \(response.status.code) (redirects are not followed)")
            }
            health.succeed("heartbeat")
            logger.debug("dead-man heartbeat sent", metadata: ["scm.file": "\(file)"])
        } catch {
            // The URL holds the monitor's token: only the file is named.
            health.fail("heartbeat", "the GET of the URL in '\(file)' failed: \(error)")
            logger.error("the dead-man heartbeat failed", metadata: ["scm.file": "\(file)", "scm.error": "\(error)"])
        }
    }
}
