import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// What operators read: `GET /v1/nodes`, `/v1/artifacts`, `/v1/events`, `/v1/schedules`; and an admin's
/// `POST /v1/nodes/{name}/accept-missing` for a held listing.
struct CatalogController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let nodes = coordinator.nodes
        let catalog = coordinator.catalog
        let audit = coordinator.audit
        router.get("/v1/nodes") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list nodes")
            return try JSONResponse.make(try await nodes.list())
        }
        router.post("/v1/nodes/:name/accept-missing") { _, context in
            let peer = try context.requirePeer([.admin], for: "accept a node's missing copies")
            let name = try context.parameters.require("name")
            guard try await catalog.acceptMissing(node: name) else {
                throw WireError(
                    .unprocessableContent, .notFound, "No listing of node '\(AuditText.escape(name))' is held.")
            }
            try await audit.record(
                peer, request: "POST /v1/nodes/\(name)/accept-missing",
                detail: "accepted that node \(name)'s next listing may mark many copies missing", logger: context.logger
            )
            return Response(status: .noContent)
        }
        let sites = coordinator.sites
        let wallClock = coordinator.wallClock
        router.get("/v1/schedules") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "list schedules")
            let states = try await catalog.scheduleStates()
            return try JSONResponse.make(Scheduler.list(sites.current, states: states, now: wallClock.currentDate))
        }
        router.get("/v1/artifacts") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list artifacts")
            let node = request.uri.queryParameters.get("node")
            let source = request.uri.queryParameters.get("source")
            let gone = request.uri.queryParameters.get("gone") == "true"
            return try JSONResponse.make(try await catalog.artifacts(node: node, source: source, gone: gone))
        }
        router.get("/v1/events") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list events")
            let limit = try WireError.badQuery {
                try ListLimit.parse(request.uri.queryParameters.get("limit"), default: 100, max: 10_000)
            }
            return try JSONResponse.make(try await audit.list(limit: limit))
        }
    }
}
