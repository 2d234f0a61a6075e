import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Hummingbird

/// `GET /v1/alerts` (operators; `?all=true` with the resolved ones), `POST /v1/alerts/silence`
/// (admin, audited) and `POST /v1/alerts/test` (admin: one evaluation now, and a test notice
/// through every channel).
struct AlertsController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let catalog = coordinator.catalog
        let audit = coordinator.audit
        let wallClock = coordinator.wallClock
        let service = coordinator.alertService
        let sites = coordinator.sites
        router.get("/v1/alerts") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "read the alerts")
            let all = request.uri.queryParameters.get("all") == "true"
            return try JSONResponse.make(try await catalog.alertBook().list(all: all))
        }
        router.get("/v1/alerts/silences") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "read the alerts' silences")
            return try JSONResponse.make(try await catalog.silences(at: wallClock.currentDate))
        }
        router.post("/v1/alerts/silence") { request, context in
            let peer = try context.requirePeer([.admin], for: "silence alerts")
            let body = try await request.decodeJSON(SilenceRequest.self)
            guard (60...(366 * 86_400)).contains(body.seconds) else {
                throw WireError(
                    .badRequest, .invalidArgument, "A silence lasts 1 minute to a year, not \(body.seconds) seconds.")
            }
            guard !body.reason.trimmingCharacters(in: .whitespaces).isEmpty, body.reason.count <= 500 else {
                throw WireError(.badRequest, .invalidArgument, "A silence needs a reason (at most 500 characters).")
            }
            if let node = body.node, sites.current.node(node) == nil {
                throw WireError(
                    .unprocessableContent, .unknownNode,
                    "Node '\(AuditText.escape(node))' is not in the site configuration.")
            }
            let silence = try await catalog.addSilence(body, by: peer.name, now: wallClock.currentDate)
            try await audit.record(
                peer, request: "POST /v1/alerts/silence",
                detail:
                    "\(body.rule.rawValue)\(body.source.map { " source \($0)" } ?? "")\(body.node.map { " node \($0)" } ?? "") until \(AlertRules.iso(silence.until)): \(body.reason)",
                logger: context.logger)
            return try JSONResponse.make(silence, status: .created)
        }
        router.post("/v1/alerts/test") { _, context in
            let peer = try context.requirePeer([.admin], for: "test the alert channels")
            let now = wallClock.currentDate
            let policy = sites.current.alerts
            let notice = AlertBook.Notice(
                kind: .firing,
                alert: AlertInfo(
                    rule: .agentSilent, subject: "test", node: nil, phase: .firing,
                    summary: "a test notice asked for by \(peer.name): if you read this, the channel works", since: now),
                folded: [])
            let error = await service.deliver(notice, policy: policy, now: now)
            try await audit.record(
                peer, request: "POST /v1/alerts/test", detail: error ?? "sent", logger: context.logger)
            guard AlertService.hasChannel(policy) else {
                throw WireError(
                    .unprocessableContent, .invalidArgument,
                    "No channel is configured: give [alerts] to and [alerts.sendmail] command, or [alerts.webhook], in the site file."
                )
            }
            if let error { throw WireError(.badGateway, .io, "The test notice was not delivered: \(error)") }
            return Response(status: .noContent)
        }
    }
}
