import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Recover tasks: their order (``RecoverOrder``) in the task's `recover` column.
extension Catalog {
    static func registerRecoverMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v11-recover") { db in
            // A recover task's order (RecoverOrder as JSON); tickets are signed at lease time, never stored.
            try db.alter(table: "task") { t in t.add(column: "recover", .text) }
        }
    }

    /// Queues a recover task on `node`, tried once: a recovery that failed is looked at by the
    /// admin who asked for it, not retried behind their back.
    public func submitRecover(node: String, source: String, order: RecoverOrder, now: Date) async throws -> TaskInfo {
        try await pool.write { db in
            let task = try Self.insertTask(
                db, SubmitTaskRequest(kind: .recover, node: node, source: source), definition: nil, transfer: nil,
                now: now, maxAttempts: 1, run: nil)
            try db.execute(
                sql: "UPDATE task SET recover = ? WHERE id = ?", arguments: [try Self.json(order), task.id])
            var withOrder = task
            withOrder.recover = order
            return withOrder
        }
    }
}
