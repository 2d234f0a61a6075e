import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// What operators read: `GET /v1/nodes`, `/v1/artifacts`, `/v1/events`, `/v1/schedules`; and an admin's
/// `POST /v1/nodes/{name}/accept-missing` for a held listing.
struct CatalogController {
    let coordinator: Coordinator
    /// Artifacts in one page of `GET /v1/artifacts`, at most.
    static let artifactPage = 1000

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
            // A page at a time, in id order (`after` the last id of the page before).
            let (after, limit) = try WireError.badQuery {
                let after = try request.uri.queryParameters.get("after").map { text in
                    guard let id = Int64(text), id >= 0 else {
                        throw BackupError(.invalidArgument, "after='\(text.prefix(40))' is not an artifact id.")
                    }
                    return id
                }
                let limit = try ListLimit.parse(
                    request.uri.queryParameters.get("limit"), default: Self.artifactPage, max: Self.artifactPage)
                return (after, limit)
            }
            return try JSONResponse.make(
                try await catalog.artifacts(node: node, source: source, gone: gone, after: after, limit: limit))
        }
        router.get("/v1/events") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list events")
            let (limit, before) = try WireError.badQuery {
                (
                    try ListLimit.parse(request.uri.queryParameters.get("limit"), default: 100, max: 10_000),
                    try ListCursor.before(request.uri.queryParameters.get("before"), what: "an event id")
                )
            }
            return try JSONResponse.make(try await audit.list(limit: limit, before: before))
        }
    }
}
