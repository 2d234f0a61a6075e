import BackupCore
import BackupProtocol
import BackupTesting
import Foundation
import GRDB
import Testing

@testable import BackupCoordinator

/// The catalog of a site that runs for years stays small and is read a page at a time:
/// finished tasks and audit events past their retention are pruned (open tasks never), task
/// lists are filtered and paged in SQL, and artifacts no copy is left of are history, listed
/// only on request.
@Suite(.timeLimit(.minutes(2)))
struct CatalogHistoryTests {
    static let day: TimeInterval = 86_400

    @Test func finishedTasksAndEventsPastTheirRetentionArePrunedAndOpenOnesNever() async throws {
        try await withTemporaryDirectory("history-prune") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            func submit(daysAgo: Double) async throws -> TaskInfo {
                try await catalog.submit(
                    SubmitTaskRequest(kind: .inventory, node: "srv1"), definition: nil, transfer: nil,
                    now: now.addingTimeInterval(-daysAgo * Self.day), maxAttempts: 3)
            }
            let oldCancelled = try await submit(daysAgo: 100)
            let oldQueued = try await submit(daysAgo: 100)
            let recentCancelled = try await submit(daysAgo: 10)
            for task in [oldCancelled, recentCancelled] {
                _ = try await catalog.updateTask(task.id, progress: nil, detail: nil) {
                    (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in try lifecycle.cancel()
                }
            }
            let ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            _ = try ca.issue(name: "root", role: .admin, output: dir.file("certs"))
            let admin = try PeerIdentity(certificate: try PEMFiles.certificate(dir.file("certs/root.pem")))
            try await catalog.recordEvent(
                actor: admin, request: "old", detail: "d", now: now.addingTimeInterval(-500 * Self.day))
            try await catalog.recordEvent(actor: admin, request: "new", detail: "d", now: now)

            let pruned = try await catalog.pruneHistory(HistoryRetention(taskDays: 90, eventDays: 400), now: now)
            #expect(pruned.tasks == 1 && pruned.events == 1)
            #expect(try await catalog.tasks().map(\.id).sorted() == [oldQueued.id, recentCancelled.id])
            #expect(try await catalog.events().map(\.request) == ["new"])
            // Nothing more on the next sweep.
            let again = try await catalog.pruneHistory(HistoryRetention(taskDays: 90, eventDays: 400), now: now)
            #expect(again.tasks == 0 && again.events == 0)
        }
    }

    @Test func taskListsAreFilteredByStateAndPagedNewestFirst() async throws {
        try await withTemporaryDirectory("history-pages") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            var ids: [Int64] = []
            for _ in 0..<7 {
                ids.append(
                    try await catalog.submit(
                        SubmitTaskRequest(kind: .inventory, node: "srv1"), definition: nil, transfer: nil, now: Date(),
                        maxAttempts: 3
                    ).id)
            }
            for id in ids.prefix(3) {
                _ = try await catalog.updateTask(id, progress: nil, detail: nil) {
                    (lifecycle: inout TaskLifecycle) throws(TaskLifecycle.Refusal) in try lifecycle.cancel()
                }
            }
            let first = try await catalog.tasks(TaskListQuery(limit: 3))
            #expect(first.map(\.id) == Array(ids.reversed().prefix(3)))
            let second = try await catalog.tasks(TaskListQuery(before: first.last?.id, limit: 3))
            #expect(second.map(\.id) == Array(ids.reversed().dropFirst(3).prefix(3)))
            #expect(try await catalog.tasks(TaskListQuery(states: [.cancelled])).map(\.id) == ids.prefix(3).reversed())
            #expect(try await catalog.tasks(TaskListQuery(states: [.queued, .leased])).count == 4)
        }
    }

    @Test func aListQueryNamesTheValueItCannotRead() throws {
        func parse(_ parameters: [String: String]) throws -> TaskListQuery {
            try TaskListQuery { parameters[$0] }
        }
        #expect(try parse([:]) == TaskListQuery())
        #expect(
            try parse(["state": "queued,failed", "before": "40", "limit": "5"]).queryString
                == "state=queued,failed&before=40&limit=5")
        for (parameters, named) in [
            (["state": "queued,done"], "'done' is not a task state"), (["before": "x"], "before='x'"),
            (["limit": "0"], "limit='0'"), (["limit": "1001"], "from 1 to 1000"),
        ] {
            let error = try #require(throws: BackupError.self) { try parse(parameters) }
            #expect(error.code == .invalidArgument && error.message.contains(named), "\(error.message)")
        }
    }

    @Test func anArtifactOnlyMissingCopiesAreLeftOfIsListedOnlyAsHistory() async throws {
        try await withTemporaryDirectory("history-gone") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            let kept = CatalogTrustTests.copy(CatalogTrustTests.good)
            var purged = CatalogTrustTests.copy(
                CatalogTrustTests.good, path: "srv1/svn/env/2026/12/01/010000/env-6.tar.gz")
            purged.stamp = "2026/12/01/010000"
            try await catalog.record(
                ArtifactReport(complete: false, copies: [kept, purged]), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            try await catalog.record(
                ArtifactReport(complete: true, copies: [kept]), node: "srv1", authority: .inventory, now: now)
            #expect(try await catalog.artifacts().map(\.stamp) == [kept.stamp])
            let all = try await catalog.artifacts(gone: true)
            #expect(all.map(\.stamp) == [purged.stamp, kept.stamp])
            // Its copy is kept as missing: owed to the node, and sent again where a source exists.
            #expect(all.first?.copies.map(\.state) == [.missing])
            #expect(try await catalog.artifact(copyPath: kept.path)?.stamp == kept.stamp)
            #expect(try await catalog.artifact(copyPath: purged.path) == nil)
        }
    }

    @Test func artifactsAndEventsAreReadAPageAtATime() async throws {
        try await withTemporaryDirectory("history-pages") { dir in
            let catalog = try Catalog(path: dir.file("catalog.sqlite"))
            let now = Date()
            let copies = (0..<5).map { i in
                var c = CatalogTrustTests.copy(
                    CatalogTrustTests.good, path: "srv1/svn/env/2026/12/0\(i + 1)/010000/env-\(i).tar.gz")
                c.stamp = "2026/12/0\(i + 1)/010000"
                return c
            }
            try await catalog.record(
                ArtifactReport(complete: false, copies: copies), node: "srv1",
                authority: .originBackup(sources: ["env"]), now: now)
            var pages: [[String]] = []
            var after: Int64?
            while true {
                let page = try await catalog.artifacts(node: nil, source: nil, gone: false, after: after, limit: 2)
                if page.isEmpty { break }
                pages.append(page.map(\.stamp))
                after = page.last?.id
            }
            #expect(pages.map(\.count) == [2, 2, 1])
            #expect(pages.flatMap { $0 } == copies.map(\.stamp))
            try await catalog.pool.write { db in
                for i in 0..<3 {
                    try db.execute(
                        sql:
                            "INSERT INTO event (at, actor, role, serial, request, detail) VALUES (?, 'root', 'admin', '01', 'POST /v1/runs', ?)",
                        arguments: [now, "run \(i)"])
                }
            }
            let first = try await catalog.events(limit: 2)
            #expect(first.map(\.detail) == ["run 2", "run 1"])
            #expect(try await catalog.events(limit: 2, before: first.last?.id).map(\.detail) == ["run 0"])
        }
    }
}
