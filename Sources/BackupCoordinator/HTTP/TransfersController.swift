import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `POST /v1/transfers` (admin): the transfer desk plans and queues the tasks. `POST
/// /v1/recoveries` (admin): it picks the artifact and copy and queues one recover task.
struct TransfersController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let desk = coordinator.desk
        let audit = coordinator.audit
        let wallClock = coordinator.wallClock
        router.post("/v1/transfers") { request, context in
            let peer = try context.requirePeer([.admin], for: "order transfers")
            let body = try await request.decodeJSON(TransferRequest.self)
            let plan: TransferPlan
            do {
                plan = try await desk.plan(body, operatorName: peer.name, now: wallClock.currentDate)
            } catch let error as BackupError where error.code == .unknownNode {
                throw WireError(.unprocessableContent, error.code, error.message)
            }
            try await audit.record(
                peer, request: "POST /v1/transfers",
                detail: "\(body.from) -> \(body.to)\(body.source.map { " (source \($0))" } ?? ""): queued tasks "
                    + (plan.queued.isEmpty ? "none" : plan.queued.map { "\($0.id)" }.joined(separator: ", "))
                    + ", \(plan.skipped.count) skipped", logger: context.logger)
            return try JSONResponse.make(plan, status: .created)
        }
        router.post("/v1/recoveries") { request, context in
            let peer = try context.requirePeer([.admin], for: "order recoveries")
            let body = try await request.decodeJSON(RecoverRequest.self)
            let task: TaskInfo
            do {
                task = try await desk.planRecovery(body, now: wallClock.currentDate)
            } catch let error as BackupError where error.code == .unknownNode {
                throw WireError(.unprocessableContent, error.code, error.message)
            }
            let pieces = task.recover?.pieces ?? []
            try await audit.record(
                peer, request: "POST /v1/recoveries",
                detail: "task \(task.id): "
                    + pieces.map { "\($0.transfer.path) from \($0.transfer.sender) to \(body.node):\($0.target)" }
                    .joined(separator: "; ") + (body.force == true ? " (force)" : ""), logger: context.logger)
            return try JSONResponse.make(task, status: .created)
        }
        let previews = coordinator.previews
        router.get("/v1/recoveries/:id/preview") { _, context in
            _ = try context.requirePeer([.admin], for: "read a recovery's preview")
            let id = try context.parameters.require("id", as: Int64.self)
            guard let preview = await previews.take(task: id, now: wallClock.currentDate) else {
                throw WireError(
                    .notFound, .notFound,
                    "Task \(id) has no preview here: it is not a folder recovery's preview that succeeded, it was fetched already, or it is older than an hour or than this coordinator's start."
                )
            }
            return try JSONResponse.make(preview)
        }
    }
}
