import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// What operators read: `GET /v1/nodes`, `/v1/artifacts`, `/v1/events`.
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
        router.get("/v1/artifacts") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list artifacts")
            let node = request.uri.queryParameters.get("node")
            let source = request.uri.queryParameters.get("source")
            return try JSONResponse.make(try await catalog.artifacts(node: node, source: source))
        }
        router.get("/v1/events") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list events")
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100
            return try JSONResponse.make(try await audit.list(limit: limit))
        }
    }
}
