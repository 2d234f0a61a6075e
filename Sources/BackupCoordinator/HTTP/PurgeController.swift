import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `/v1/purge/...`: operators read a node's purge plan and the pause switches; admins run the
/// stage now, pause and resume it, and accept a flagged regression (each audited). Decode,
/// call ``PurgeStage``, encode.
struct PurgeController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let purges = coordinator.purges
        let catalog = coordinator.catalog
        let audit = coordinator.audit
        /// A node or source the site lacks, named in a body or query, is a bad request.
        @Sendable func unprocessable<T>(_ body: () async throws -> T) async throws -> T {
            do { return try await body() } catch let error as BackupError
                where error.code == .unknownNode || error.code == .unknownSource
            {
                throw WireError(.unprocessableContent, error.code, error.message)
            }
        }
        router.get("/v1/purge/plan") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "read purge plans")
            guard let node = request.uri.queryParameters.get("node") else {
                throw WireError(.badRequest, .invalidArgument, "GET /v1/purge/plan needs ?node=NAME.")
            }
            return try JSONResponse.make(try await unprocessable { try await purges.plan(node: node) })
        }
        router.post("/v1/purge/apply") { request, context in
            let peer = try context.requirePeer([.admin], for: "run purges")
            let body = try await request.decodeJSON(PurgeApplyRequest.self)
            let plan = try await unprocessable { try await purges.apply(node: body.node, by: peer.name) }
            try await audit.record(
                peer, request: "POST /v1/purge/apply",
                detail: plan.task.map { "queued purge task \($0) of \(plan.deletions.count) copies on \(body.node)" }
                    ?? "ordered nothing on \(body.node): \(plan.paused ?? "nothing to delete")",
                logger: context.logger)
            return try JSONResponse.make(plan)
        }
        router.get("/v1/purge/pauses") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "read purge switches")
            return try JSONResponse.make(try await catalog.purgePauses())
        }
        for (path, on) in [("/v1/purge/pause", true), ("/v1/purge/resume", false)] {
            router.post(RouterPath(path)) { request, context in
                let peer = try context.requirePeer([.admin], for: on ? "pause purging" : "resume purging")
                let body = try await request.decodeJSON(PurgeSwitchRequest.self)
                let changed = try await unprocessable {
                    try await purges.pause(node: body.node, on: on, by: peer.name, reason: body.reason)
                }
                try await audit.record(
                    peer, request: "POST \(path)",
                    detail: "\(on ? "paused" : "resumed") purging \(body.node.map { "on \($0)" } ?? "site-wide")"
                        + (changed ? "" : " (it was already)") + (body.reason.map { ": \($0)" } ?? ""),
                    logger: context.logger)
                return try JSONResponse.make(try await catalog.purgePauses())
            }
        }
        router.post("/v1/trash") { request, context in
            let peer = try context.requirePeer([.admin], for: "work a node's trash")
            let body = try await request.decodeJSON(TrashRequest.self)
            let task = try await unprocessable {
                do { return try await purges.trash(node: body.node, order: body.order, by: peer.name) } catch let error
                    as BackupError where error.code == .invalidArgument
                {
                    throw WireError(.unprocessableContent, error.code, error.message)
                }
            }
            let what =
                body.order.restore.map { "restore \($0.joined(separator: ", "))" }
                ?? body.order.emptyOlderThanSeconds.map { "empty what was deleted over \(Int($0)) s ago" } ?? "list"
            try await audit.record(
                peer, request: "POST /v1/trash", detail: "queued trash task \(task.id) on \(body.node): \(what)",
                logger: context.logger)
            return try JSONResponse.make(task, status: .created)
        }
        router.post("/v1/purge/release") { request, context in
            let peer = try context.requirePeer([.admin], for: "release regressions")
            let body = try await request.decodeJSON(PurgeReleaseRequest.self)
            let released = try await unprocessable {
                try await purges.release(origin: body.origin, source: body.source, by: peer.name)
            }
            try await audit.record(
                peer, request: "POST /v1/purge/release",
                detail:
                    "accepted \(released.path) as the baseline of \(body.origin)/\(body.source) (\(released.regressions.joined(separator: "; ")))",
                logger: context.logger)
            return try JSONResponse.make(released)
        }
    }
}
