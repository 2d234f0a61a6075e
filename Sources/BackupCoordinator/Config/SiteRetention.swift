import BackupCore
import BackupProtocol
import Foundation

extension SiteConfiguration {
    /// One `retention` table as written: the keys it names. Tables are laid over each other
    /// key by key, site-wide `[retention]` first, then the source's
    /// `[nodes.S.sources.X.retention]`, then, for the copies a backup node holds, that node's
    /// `[nodes.B.retention]` (a backup node may keep longer than the server).
    public struct RetentionTable: Sendable, Equatable {
        public var keepLast: Int?
        public var keepWithin: TimeInterval?
        public var keepDaily: Int?
        public var keepWeekly: Int?
        public var keepMonthly: Int?

        public init(
            keepLast: Int? = nil, keepWithin: TimeInterval? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil,
            keepMonthly: Int? = nil
        ) {
            self.keepLast = keepLast
            self.keepWithin = keepWithin
            self.keepDaily = keepDaily
            self.keepWeekly = keepWeekly
            self.keepMonthly = keepMonthly
        }

        /// `self` laid over `base`: each key this table names wins.
        func over(_ base: RetentionTable) -> RetentionTable {
            RetentionTable(
                keepLast: keepLast ?? base.keepLast, keepWithin: keepWithin ?? base.keepWithin,
                keepDaily: keepDaily ?? base.keepDaily, keepWeekly: keepWeekly ?? base.keepWeekly,
                keepMonthly: keepMonthly ?? base.keepMonthly)
        }

        func policy(zone: TimeZone) -> RetentionPolicy {
            RetentionPolicy(
                keepLast: keepLast ?? 0, keepWithin: keepWithin, keepDaily: keepDaily ?? 0,
                keepWeekly: keepWeekly ?? 0, keepMonthly: keepMonthly ?? 0, timeZone: zone)
        }
    }

    /// The site-wide `[retention]` table: the policy's defaults and the purge stage's evidence
    /// rules. Without any retention table at all nothing is ever purged by a run.
    public struct PurgeRules: Sendable, Equatable {
        /// The site-wide policy keys; nil when `[retention]` names none.
        public var table: RetentionTable?
        /// A verified copy counts toward `copies` only when the catalog recorded it at arrival,
        /// or an inventory or verify saw it, within this long (`purge_evidence_age`, 48 h).
        public var evidenceAge: TimeInterval = 48 * 3600
        /// An artifact older than this may be purged even with fewer than `copies` verified
        /// copies on backup nodes (`allow_unreplicated_purge_after`); nil: never.
        public var allowUnreplicatedAfter: TimeInterval?
        /// Days a repaired mutant stays in quarantine before an order removes it (`quarantine_days`).
        public var quarantineDays = 30

        public init() {}
    }

    /// The retention of the copies of `source` of server `origin` that `holder` holds; nil
    /// when no table at any level applies (nothing of it is purged by a run).
    public func retention(origin: String, source: String, holder: String) -> RetentionPolicy? {
        let sourceTable = nodes[origin]?.retention[source]
        let holderTable = holder == origin ? nil : nodes[holder]?.holderRetention
        guard purge.table != nil || sourceTable != nil || holderTable != nil else { return nil }
        var table = purge.table ?? RetentionTable()
        if let sourceTable { table = sourceTable.over(table) }
        if let holderTable { table = holderTable.over(table) }
        let zone = nodes[origin]?.schedules[source]?.zone
        return table.policy(zone: zone ?? TimeZone(identifier: schedule.timeZone) ?? TimeZone(identifier: "UTC")!)
    }

    /// Whether `holder` is where copies of `origin`'s artifacts belong: the origin itself, or
    /// a backup node paired with it. A copy anywhere else is an orphan: listed, purged by
    /// policy, usable to repair from, never counted toward `copies`.
    public func holds(origin: String, holder: String) -> Bool {
        holder == origin || pairings.contains { $0.server == origin && $0.backup == holder }
    }

    /// Reads a `retention` table (site-wide, a source's or a backup node's).
    static func readRetentionTable(_ t: ConfigTable) throws -> RetentionTable {
        var table = RetentionTable()
        func count(_ key: String) throws -> Int? {
            guard let v = try t.int(key) else { return nil }
            guard (0...100_000).contains(v) else { throw t.error(key, "\(v) is outside 0...100000") }
            return v
        }
        table.keepLast = try count("keep_last")
        table.keepDaily = try count("keep_daily")
        table.keepWeekly = try count("keep_weekly")
        table.keepMonthly = try count("keep_monthly")
        if let text = try t.string("keep_within") {
            do { table.keepWithin = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error("keep_within", "'\(text)' is not a duration such as \"7d\" (\(error.message))")
            }
        }
        return table
    }

    /// Reads the site-wide `[retention]`: the policy keys and `purge_evidence_age`,
    /// `allow_unreplicated_purge_after`, `quarantine_days`.
    static func readPurgeRules(_ top: ConfigTable) throws -> (PurgeRules, ConfigTable?) {
        var rules = PurgeRules()
        guard let t = try top.table("retention") else { return (rules, nil) }
        let table = try readRetentionTable(t)
        if table != RetentionTable() { rules.table = table }
        func duration(_ key: String) throws -> TimeInterval? {
            guard let text = try t.string(key) else { return nil }
            do {
                let seconds = try RetentionPolicy.parseDuration(text)
                guard seconds > 0 else { throw t.error(key, "'\(text)' must be longer than 0") }
                return seconds
            } catch let error as BackupError where error.code != .configInvalid {
                throw t.error(key, "'\(text)' is not a duration such as \"48h\" (\(error.message))")
            }
        }
        if let v = try duration("purge_evidence_age") { rules.evidenceAge = v }
        rules.allowUnreplicatedAfter = try duration("allow_unreplicated_purge_after")
        if let v = try t.int("quarantine_days") {
            guard (1...3650).contains(v) else { throw t.error("quarantine_days", "\(v) is outside 1...3650") }
            rules.quarantineDays = v
        }
        try t.finish()
        return (rules, t)
    }

    /// Refuses a retention that keeps nothing, naming the key of the most specific table that
    /// makes it so: every combination a copy can be judged under is checked once the site is read.
    func checkRetention(tables: [String: ConfigTable]) throws {
        func refuse(_ table: ConfigTable?, _ what: String) -> BackupError {
            let message =
                "\(what) keeps nothing: give keep_last (1 or more), keep_within, keep_daily, keep_weekly or keep_monthly"
            return table?.error("keep_last", message)
                ?? BackupError(.configInvalid, "[retention]: \(message)")
        }
        if let site = purge.table, site.policy(zone: .current).keepsNothing {
            throw refuse(tables["retention"], "[retention]")
        }
        for node in nodes.values.sorted(by: { $0.name < $1.name }) {
            for source in node.sources.keys.sorted() {
                let holders = [node.name] + receivers(of: node.name)
                for holder in holders {
                    guard let policy = retention(origin: node.name, source: source, holder: holder),
                        policy.keepsNothing
                    else { continue }
                    let key =
                        holder != node.name && nodes[holder]?.holderRetention != nil
                        ? "nodes.\(holder).retention"
                        : (node.retention[source] != nil
                            ? "nodes.\(node.name).sources.\(source).retention" : "retention")
                    throw refuse(tables[key], "the retention of \(node.name)/\(source) on \(holder)")
                }
            }
        }
    }
}
