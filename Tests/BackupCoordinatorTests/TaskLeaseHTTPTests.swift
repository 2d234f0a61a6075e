import AsyncHTTPClient
import BackupCoordinator
import BackupProtocol
import BackupTesting
import Foundation
import Testing

/// Tasks through the real server: long-poll hand-out, exactly-once under concurrency, lease
/// expiry with fencing, refusals of other nodes' and stale reports.
@Suite(.timeLimit(.minutes(3)))
struct TaskLeaseHTTPTests {
    static let register = try! WireJSON.encoder().encode(
        RegisterRequest(version: "0.1.0", storePath: "/srv/store", diskTotal: 1000, diskFree: 600, kinds: ["svn"]))

    private func registerAgents(_ site: CoordinatorHarness, _ names: [String], port: Int) async throws {
        for name in names {
            try await site.withClient(as: name) { client in
                let (status, body) = try await CoordinatorHarness.send(
                    client, .post, port: port, "/v1/agents/register", body: Self.register)
                if status != 200 { throw CoordinatorHarness.HarnessError(message: body) }
            }
        }
    }

    @Test func aQueuedTaskReachesAWaitingAgentAndOnlyAnAdminMaySubmit() async throws {
        try await withTemporaryDirectory("lease-poll") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("root", .admin)
            try site.issue("alice", .operator)
            try await site.serving { port in
                try await registerAgents(site, ["srv1"], port: port)
                try await site.withClient(as: "alice") { client in
                    let submit = SubmitTaskRequest(kind: .backup, node: "srv1", source: "env")
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks", body: try WireJSON.encoder().encode(submit))
                    #expect(status == 403)
                    #expect(body.contains("may not submit tasks"))
                }
                try await site.withClient(as: "root") { client in
                    let unknown = SubmitTaskRequest(kind: .verify, node: "ghost")
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks", body: try WireJSON.encoder().encode(unknown))
                    #expect(status == 422)
                    #expect(body.contains("Node 'ghost' is not in the site configuration"))
                    let foreign = SubmitTaskRequest(kind: .backup, node: "srv1", source: "etc")
                    let (fStatus, fBody) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks", body: try WireJSON.encoder().encode(foreign))
                    #expect(fStatus == 422)
                    #expect(fBody.contains("Node 'srv1' has no source 'etc' in the site configuration (it has: env)"))
                    let purge = SubmitTaskRequest(kind: .purge, node: "srv1", artifacts: ["srv1/svn/env/x.tar.gz"])
                    let (pStatus, pBody) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks", body: try WireJSON.encoder().encode(purge))
                    #expect(pStatus == 422)
                    #expect(pBody.contains("The catalog knows no copy 'srv1/svn/env/x.tar.gz' on node 'srv1'"))
                }
                // The agent waits first; the task is queued while it waits.
                async let leased = site.withClient(as: "srv1") { client in
                    try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks/lease", LeaseRequest(waitSeconds: 20),
                        as: LeaseResponse.self)
                }
                try await Task.sleep(for: .milliseconds(300))
                let queued = try await site.withClient(as: "root") { client in
                    try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks",
                        SubmitTaskRequest(kind: .backup, node: "srv1", source: "env"), as: TaskInfo.self)
                }
                let answer = try await leased
                #expect(answer.task?.id == queued.id)
                #expect(answer.task?.state == .leased)
                #expect(answer.task?.fencingToken == 1)
                #expect(
                    answer.task?.definition == SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env"),
                    "the source's definition comes from the site configuration with the task")
            }
        }
    }

    /// An admin cancels a queued task, with a reason the task and the audit keep; a leased or
    /// ended task is not cancelled, and an operator cancels nothing.
    @Test func anAdminCancelsAQueuedTaskAndNothingElse() async throws {
        try await withTemporaryDirectory("cancel") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("root", .admin)
            try site.issue("alice", .operator)
            try await site.serving { port in
                let task = try await site.withClient(as: "root") { client in
                    try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks", SubmitTaskRequest(kind: .inventory, node: "srv2"),
                        as: TaskInfo.self)
                }
                let reason = try WireJSON.encoder().encode(CancelTaskRequest(reason: "srv2 will not come back"))
                try await site.withClient(as: "alice") { client in
                    let (status, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks/\(task.id)/cancel", body: reason)
                    #expect(status == 403 && body.contains("may not cancel tasks"), "\(body)")
                }
                try await site.withClient(as: "root") { client in
                    let cancelled = try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks/\(task.id)/cancel",
                        CancelTaskRequest(reason: "srv2 will not come back"), as: TaskInfo.self)
                    #expect(cancelled.state == .cancelled)
                    #expect(cancelled.lastError?.contains("cancelled by root: srv2 will not come back") == true)
                    let (again, body) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks/\(task.id)/cancel", body: reason)
                    #expect(
                        again == 409 && body.contains("task-not-leasable") && body.contains("cancelled, not queued"))
                    let (unknown, _) = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks/999/cancel", body: reason)
                    #expect(unknown == 404)
                    let (_, events) = try await CoordinatorHarness.send(client, .get, port: port, "/v1/events")
                    #expect(events.contains("POST /v1/tasks/\(task.id)/cancel"), "\(events)")
                }
            }
        }
    }

    @Test func aHundredTasksOverThreeAgentsEachRunExactlyOnce() async throws {
        try await withTemporaryDirectory("lease-100") { dir in
            let site = try CoordinatorHarness(dir)
            let agents = ["srv1", "srv2", "srv3"]
            for name in agents { try site.issue(name, .agent) }
            try site.issue("root", .admin)
            try await site.serving { port in
                try await registerAgents(site, agents, port: port)
                let ids = try await site.withClient(as: "root") { client in
                    var ids: [Int64] = []
                    for i in 0..<100 {
                        let task = try await CoordinatorHarness.call(
                            client, .post, port: port, "/v1/tasks",
                            SubmitTaskRequest(kind: .verify, node: agents[i % 3]), as: TaskInfo.self)
                        ids.append(task.id)
                    }
                    return ids
                }
                // Two concurrent workers per agent, each leasing until the queue is dry.
                let done = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    for agent in agents {
                        for _ in 0..<2 {
                            group.addTask {
                                try await site.withClient(as: agent) { client in
                                    var mine: [Int64] = []
                                    while true {
                                        let lease = try await CoordinatorHarness.call(
                                            client, .post, port: port, "/v1/tasks/lease", LeaseRequest(waitSeconds: 0),
                                            as: LeaseResponse.self)
                                        guard let task = lease.task else { return mine }
                                        let result = try await CoordinatorHarness.call(
                                            client, .post, port: port, "/v1/tasks/\(task.id)/result",
                                            ResultRequest(fencingToken: task.fencingToken, error: nil),
                                            as: TaskInfo.self)
                                        #expect(result.state == .succeeded)
                                        mine.append(task.id)
                                    }
                                }
                            }
                        }
                    }
                    var all: [Int64] = []
                    for try await part in group { all += part }
                    return all
                }
                #expect(done.count == 100)
                #expect(Set(done) == Set(ids))
            }
        }
    }

    @Test func anExpiredLeaseGoesBackToTheQueueAndTheDeadLeasesLateResultIsRefused() async throws {
        try await withTemporaryDirectory("lease-expiry") { dir in
            let site = try CoordinatorHarness(dir)
            try site.issue("srv1", .agent)
            try site.issue("srv2", .agent)
            try site.issue("root", .admin)
            try await site.serving(configure: { $0.leaseSeconds = 3 }) { port in
                try await registerAgents(site, ["srv1", "srv2"], port: port)
                let queued = try await site.withClient(as: "root") { client in
                    try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks",
                        SubmitTaskRequest(kind: .backup, node: "srv1", source: "env"), as: TaskInfo.self)
                }
                try await site.withClient(as: "srv1") { client in
                    let first = try #require(
                        try await CoordinatorHarness.call(
                            client, .post, port: port, "/v1/tasks/lease", LeaseRequest(waitSeconds: 0),
                            as: LeaseResponse.self
                        ).task)
                    #expect(first.id == queued.id)
                    // The agent dies; its lease runs out; its restart gets the task with a new token.
                    try await Task.sleep(for: .milliseconds(3500))
                    let second = try #require(
                        try await CoordinatorHarness.call(
                            client, .post, port: port, "/v1/tasks/lease", LeaseRequest(waitSeconds: 0),
                            as: LeaseResponse.self
                        ).task)
                    #expect(second.id == first.id)
                    #expect(second.fencingToken > first.fencingToken)
                    #expect(second.attempts == 2)
                    let renewed = try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks/\(second.id)/renew",
                        RenewRequest(fencingToken: second.fencingToken, progressed: true), as: TaskInfo.self)
                    #expect(renewed.state == .leased)
                    let late = try await CoordinatorHarness.send(
                        client, .post, port: port, "/v1/tasks/\(first.id)/result",
                        body: try WireJSON.encoder().encode(ResultRequest(fencingToken: first.fencingToken, error: nil))
                    )
                    #expect(late.0 == 409)
                    #expect(late.1.contains("stale-fencing-token"))
                    // Another node may not report on this node's task.
                    let foreign = try await site.withClient(as: "srv2") { other in
                        try await CoordinatorHarness.send(
                            other, .post, port: port, "/v1/tasks/\(second.id)/result",
                            body: try WireJSON.encoder().encode(
                                ResultRequest(fencingToken: second.fencingToken, error: nil)))
                    }
                    #expect(foreign.0 == 409)
                    #expect(foreign.1.contains("not-lease-holder"))
                    _ = try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks/\(second.id)/renew",
                        RenewRequest(fencingToken: second.fencingToken, progressed: true), as: TaskInfo.self)
                    let done = try await CoordinatorHarness.call(
                        client, .post, port: port, "/v1/tasks/\(second.id)/result",
                        ResultRequest(fencingToken: second.fencingToken, error: nil), as: TaskInfo.self)
                    #expect(done.state == .succeeded)
                }
            }
        }
    }
}
