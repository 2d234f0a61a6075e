import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Time series for the plots and trends (`sample` table): a value per series name and instant,
/// written at most every 5 minutes, averaged to hours after 30 days and to days after a year,
/// dropped after 3 years. Series: `disk.free:<node>`, `disk.total:<node>`.
extension Catalog {
    public struct Sample: Sendable, Equatable {
        public var at: Date
        public var value: Double
        public init(at: Date, value: Double) {
            self.at = at
            self.value = value
        }
    }

    static func registerSampleMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v13-samples") { db in
            try db.create(table: "sample") { t in
                t.column("series", .text).notNull()
                t.column("at", .datetime).notNull()
                t.column("value", .double).notNull()
                // raw, hour or day: what one row stands for.
                t.column("span", .text).notNull().defaults(to: "raw")
            }
            try db.create(index: "sample_by_series", on: "sample", columns: ["series", "at"])
        }
    }

    /// Records `values` (by series) at `at`.
    public func addSamples(_ values: [String: Double], at: Date) async throws {
        try await pool.write { db in
            for (series, value) in values.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    sql: "INSERT INTO sample (series, at, value) VALUES (?, ?, ?)", arguments: [series, at, value])
            }
        }
    }

    /// The samples of `series` since `since`, oldest first.
    public func samples(_ series: String, since: Date) async throws -> [Sample] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT at, value FROM sample WHERE series = ? AND at >= ? ORDER BY at",
                arguments: [series, since]
            ).map { Sample(at: $0["at"], value: $0["value"]) }
        }
    }

    /// Raw samples older than 30 days become hourly averages, hourly ones older than a year
    /// daily averages; anything older than 3 years goes.
    public func downsampleSamples(now: Date) async throws {
        try await pool.write { db in
            for (from, to, bucket, age) in [
                ("raw", "hour", "%Y-%m-%d %H:00:00", 30.0 * 86_400),
                ("hour", "day", "%Y-%m-%d 00:00:00", 365.0 * 86_400),
            ] {
                // Whole buckets only, so that one hour (or day) becomes one row.
                let unit = to == "hour" ? 3600.0 : 86_400.0
                let cutoff = Date(
                    timeIntervalSince1970: (now.addingTimeInterval(-age).timeIntervalSince1970 / unit).rounded(.down)
                        * unit)
                try db.execute(
                    sql: """
                        INSERT INTO sample (series, at, value, span)
                        SELECT series, strftime(?, at) || '.000', avg(value), ? FROM sample
                        WHERE span = ? AND at < ? GROUP BY series, strftime(?, at)
                        """, arguments: [bucket, to, from, cutoff, bucket])
                try db.execute(sql: "DELETE FROM sample WHERE span = ? AND at < ?", arguments: [from, cutoff])
            }
            try db.execute(
                sql: "DELETE FROM sample WHERE at < ?", arguments: [now.addingTimeInterval(-3 * 366 * 86_400)])
        }
    }
}
