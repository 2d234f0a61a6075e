import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `/v1/runs...`: an admin starts a run; operators list runs and read one. Decode, call
/// ``Runs``, encode.
struct RunsController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let runs = coordinator.runs
        let audit = coordinator.audit
        router.post("/v1/runs") { request, context in
            let peer = try context.requirePeer([.admin], for: "start runs")
            let body = try await request.decodeJSON(StartRunRequest.self)
            let selected: [Runs.Selected]
            do { selected = try runs.select(node: body.node, source: body.source) } catch let error as BackupError
                where error.code == .unknownNode
            {
                // A run naming a node the site lacks is a bad request body, not a forbidden caller.
                throw WireError(.unprocessableContent, error.code, error.message)
            }
            let run = try await runs.start(selected, trigger: .manual, requestedBy: peer.name)
            try await audit.record(
                peer, request: "POST /v1/runs",
                detail: "started run \(run.id) of \(selected.count) sources"
                    + (body.node.map { " on \($0)" } ?? "") + (body.source.map { " (source \($0))" } ?? ""),
                logger: context.logger)
            return try JSONResponse.make(run, status: .created)
        }
        router.get("/v1/runs") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list runs")
            let query = try WireError.badQuery { try RunListQuery(parameter: { request.uri.queryParameters.get($0) }) }
            return try JSONResponse.make(try await runs.list(query))
        }
        router.get("/v1/runs/:id") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "read runs")
            let id = try context.parameters.require("id", as: Int64.self)
            return try JSONResponse.make(try await runs.show(id))
        }
    }
}
