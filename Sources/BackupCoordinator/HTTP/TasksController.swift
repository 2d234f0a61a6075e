import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `/v1/tasks...`: operators queue and list tasks; agents lease, renew, report and hand back.
/// Decode, call the task queue (and the transfer desk, which signs what a task carries),
/// encode.
struct TasksController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let queue = coordinator.queue
        let nodes = coordinator.nodes
        let submissions = coordinator.submissions
        let results = coordinator.results
        let audit = coordinator.audit
        let desk = coordinator.desk
        let wallClock = coordinator.wallClock
        let sites = coordinator.sites
        router.post("/v1/tasks") { request, context in
            let peer = try context.requirePeer([.admin], for: "submit tasks")
            let body = try await request.decodeJSON(SubmitTaskRequest.self)
            let task: TaskInfo
            do { task = try await submissions.submit(body) } catch let error as BackupError
                where error.code == .unknownNode
            {
                // A task naming a node the site lacks is a bad request body, not a forbidden caller.
                throw WireError(.unprocessableContent, error.code, error.message)
            }
            try await audit.record(
                peer, request: "POST /v1/tasks",
                detail: "queued \(task.kind.rawValue) task \(task.id) for \(body.node)"
                    + (body.source.map { " (source \($0))" } ?? "")
                    + (body.artifacts.map { " naming \($0.count) copies" } ?? ""), logger: context.logger)
            return try JSONResponse.make(task, status: .created)
        }
        router.get("/v1/tasks") { request, context in
            _ = try context.requirePeer([.operator, .admin], for: "list tasks")
            let query = try WireError.badQuery { try TaskListQuery(parameter: { request.uri.queryParameters.get($0) }) }
            return try JSONResponse.make(try await queue.list(query))
        }
        router.post("/v1/tasks/:id/cancel") { request, context in
            let peer = try context.requirePeer([.admin], for: "cancel tasks")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(CancelTaskRequest.self)
            guard let task = try await queue.store.task(id) else {
                throw WireError(.notFound, .unknownTask, "The catalog holds no task \(id).")
            }
            let why = body.reason.map { AuditText.escape($0, limit: 200) } ?? "no reason given"
            let failure = TaskFailure(code: .cancelled, message: "Task \(id) cancelled by \(peer.name): \(why).")
            guard try await coordinator.catalog.cancelQueued(id, failure: failure) else {
                throw WireError(
                    .conflict, .taskNotLeasable,
                    "Task \(id) is \(task.state.rawValue), not queued: only a queued task is cancelled (a leased one runs to its end)."
                )
            }
            try await audit.record(
                peer, request: "POST /v1/tasks/\(id)/cancel",
                detail: "cancelled \(task.kind.rawValue) task \(id) on \(task.node): \(why)", logger: context.logger)
            await coordinator.signals.signal(TaskSignals.runs)
            guard let cancelled = try await queue.store.task(id) else {
                throw WireError(.notFound, .unknownTask, "The catalog holds no task \(id).")
            }
            return try JSONResponse.make(cancelled)
        }
        router.get("/v1/tasks/:id") { _, context in
            _ = try context.requirePeer([.operator, .admin], for: "read tasks")
            let id = try context.parameters.require("id", as: Int64.self)
            guard let task = try await queue.store.task(id) else {
                throw WireError(.notFound, .unknownTask, "The catalog holds no task \(id).")
            }
            return try JSONResponse.make(task)
        }
        router.post("/v1/tasks/lease") { request, context in
            let peer = try await context.siteAgent(nodes, for: "lease tasks")
            let body = try await request.decodeJSON(LeaseRequest.self)
            let maxTasks = sites.current.node(peer.name)?.maxTasks ?? 1
            guard
                let task = try await queue.lease(
                    for: peer.name, waitSeconds: body.waitSeconds, confirms: body.confirms ?? false, maxTasks: maxTasks)
            else {
                return try JSONResponse.make(LeaseResponse(task: nil))
            }
            return try JSONResponse.make(
                LeaseResponse(task: try await desk.equip(task, now: wallClock.currentDate, leasing: true)))
        }
        router.post("/v1/tasks/:id/renew") { request, context in
            let peer = try await context.siteAgent(nodes, for: "renew leases")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(RenewRequest.self)
            let renewed = try await queue.renew(id, by: peer.name, body)
            // A fresh ticket or order with each renewal: they live only twice the lease.
            return try JSONResponse.make(try await desk.equip(renewed, now: wallClock.currentDate))
        }
        router.post("/v1/tasks/:id/result") { request, context in
            let peer = try await context.siteAgent(nodes, for: "report task results")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(ResultRequest.self, limit: CoordinatorServer.maxResultBytes)
            return try JSONResponse.make(try await results.accept(id, from: peer.name, body))
        }
        router.post("/v1/tasks/:id/handback") { request, context in
            let peer = try await context.siteAgent(nodes, for: "hand back tasks")
            let id = try context.parameters.require("id", as: Int64.self)
            let body = try await request.decodeJSON(HandBackRequest.self)
            return try JSONResponse.make(try await queue.handBack(id, by: peer.name, token: body.fencingToken))
        }
    }
}
