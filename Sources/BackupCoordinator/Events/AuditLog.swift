import BackupCore
import BackupProtocol
import Foundation
import Logging

/// Accepted admin requests: each is logged at `notice` with the request's logger and kept as
/// an event in the catalog (`scm-backup events`).
public struct AuditLog: Sendable {
    let catalog: Catalog
    let wallClock: any WallClock

    public func record(_ peer: PeerIdentity, request: String, detail: String, logger: Logger) async throws {
        let event = try await catalog.recordEvent(
            actor: peer, request: request, detail: detail, now: wallClock.currentDate)
        logger.notice(
            "admin request accepted",
            metadata: [
                "scm.actor": "\(event.actor)", "scm.serial": "\(event.serial)", "scm.request": "\(event.request)",
                "scm.detail": "\(event.detail)", "scm.event": "\(event.id)",
            ])
    }

    public func list(limit: Int, before: Int64? = nil) async throws -> [EventInfo] {
        try await catalog.events(limit: min(max(limit, 1), 10_000), before: before)
    }
}
