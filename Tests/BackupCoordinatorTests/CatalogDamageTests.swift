import BackupCore
import BackupHTTP
import BackupProtocol
import BackupTesting
import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import BackupCoordinator

/// A catalog SQLite finds damaged while the hub runs: requests get 503 `catalog-damaged`
/// naming the file and the remedy (not an empty 500), and the hub stops.
@Suite(.timeLimit(.minutes(3)))
struct CatalogDamageTests {
    /// A real SQLite file whose pages after the first were overwritten, and the real error a
    /// read of it throws.
    static func damagedDatabaseError(_ dir: TemporaryDirectory) throws -> any Error {
        let path = dir.file("damaged.sqlite")
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT)")
            for i in 0..<2000 {
                try db.execute(
                    sql: "INSERT INTO t (text) VALUES (?)",
                    arguments: ["row \(i) " + String(repeating: "x", count: 100)])
            }
        }
        try queue.close()
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 4096)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 64 * 1024))
        try handle.close()
        let reopened = try DatabaseQueue(path: path)
        do {
            _ = try reopened.read { db in try Int.fetchOne(db, sql: "SELECT sum(length(text)) FROM t") }
        } catch {
            return error
        }
        Issue.record("the damaged file read without an error")
        return CancellationError()
    }

    @Test func aRequestMeetingDamageIsAnswered503NamingTheFileAndTheRemedy() async throws {
        try await withTemporaryDirectory("damage") { dir in
            let damageError = try Self.damagedDatabaseError(dir)
            #expect(CatalogDamage.isDamage(damageError), "\(damageError)")
            let damage = CatalogDamage(path: "/var/lib/scm-backup/catalog.sqlite")
            let router = Router()
            router.add(middleware: ErrorMiddleware<BasicRequestContext>(revealsInternals: true))
            router.add(middleware: CatalogDamageMiddleware<BasicRequestContext>(damage: damage, signals: TaskSignals()))
            router.get("/damaged") { _, _ -> Response in throw damageError }
            router.get("/other") { _, _ -> Response in throw BackupError(.io, "not damage") }
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/other", method: .get) { response in
                    #expect(response.status.code == 500)
                }
                #expect(damage.error == nil, "another error is not damage")
                try await client.execute(uri: "/damaged", method: .get) { response in
                    #expect(response.status.code == 503)
                    let error = try WireJSON.decoder().decode(ErrorResponse.self, from: Data(buffer: response.body))
                    #expect(error.error.code == "catalog-damaged")
                    #expect(error.error.message.contains("/var/lib/scm-backup/catalog.sqlite"))
                    #expect(error.error.message.contains("scm-backup catalog rebuild"))
                }
            }
            #expect(damage.error?.code == .catalogDamaged)
        }
    }

    @Test func theSweeperStopsTheHubOnceDamageIsSeen() async throws {
        try await withTemporaryDirectory("damage-stop") { dir in
            let damageError = try Self.damagedDatabaseError(dir)
            let clock = ManualClock()
            let coordinator = try LeaseSweeperTests.coordinator(dir, clock: clock, logs: LogCapture())
            let stopped = await #expect(throws: BackupError.self) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let sweeper = coordinator.sweeper
                    group.addTask { try await sweeper.run() }
                    try await clock.waitForSleepers()
                    // A request met the damage: it is noted and the sweeper woken, which fails.
                    _ = coordinator.catalog.damage.note(damageError)
                    await coordinator.signals.signal(TaskSignals.sweeper)
                    try await group.next()
                }
            }
            #expect(stopped?.code == .catalogDamaged)
            #expect(stopped?.message.contains(dir.file("catalog.sqlite")) == true)
        }
    }
}
