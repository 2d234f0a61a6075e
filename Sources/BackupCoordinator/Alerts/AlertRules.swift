import BackupCore
import BackupProtocol
import Foundation

/// What is wrong now, from the site's status, its nodes, the failed copies and the clock: one
/// ``Condition`` per rule and subject. A pure function, tested as a table of states and clocks.
public enum AlertRules {
    public struct Condition: Sendable, Equatable {
        public var rule: AlertRule
        public var subject: String
        public var node: String?
        public var summary: String
        public init(rule: AlertRule, subject: String, node: String?, summary: String) {
            self.rule = rule
            self.subject = subject
            self.node = node
            self.summary = summary
        }
    }

    /// A copy that failed verification, as the catalog lists it.
    public struct FailedCopy: Sendable, Equatable {
        public var node: String
        public var path: String
        public var state: CopyState
        public var problem: String?
        public init(node: String, path: String, state: CopyState, problem: String?) {
            self.node = node
            self.path = path
            self.state = state
            self.problem = problem
        }
    }

    /// `heartbeatSeconds` is the agents' heartbeat period: an agent is silent after
    /// `agent_silent_after` or three heartbeats, whichever is longer (a quiet interval between
    /// two heartbeats is no silence).
    /// A certificate and when it expires.
    public struct Certificate: Sendable, Equatable {
        public var name: String
        public var node: String?
        public var notAfter: Date
        public init(name: String, node: String?, notAfter: Date) {
            self.name = name
            self.node = node
            self.notAfter = notAfter
        }
    }

    /// What the catalog's recent history says: failed tasks of the last day, and each source's
    /// last schedule outcome.
    public struct History: Sendable, Equatable {
        public var failedTasks: [TaskInfo] = []
        public var schedules: [ScheduleInfo] = []
        public var certificates: [Certificate] = []
        /// Each alert channel's last failure, by channel (`heartbeat`).
        public var channelFailures: [String: String] = [:]
        /// Each node's store disk free over the last week (``Catalog/samples(_:since:)``).
        public var diskFree: [String: [Catalog.Sample]] = [:]
        public init(
            failedTasks: [TaskInfo] = [], schedules: [ScheduleInfo] = [], certificates: [Certificate] = [],
            channelFailures: [String: String] = [:], diskFree: [String: [Catalog.Sample]] = [:]
        ) {
            self.diskFree = diskFree
            self.failedTasks = failedTasks
            self.schedules = schedules
            self.certificates = certificates
            self.channelFailures = channelFailures
        }
    }

    public static func evaluate(
        status: SiteStatus, nodes: [NodeStatus], failed: [FailedCopy], site: SiteConfiguration, now: Date,
        heartbeatSeconds: Int = 15, history: History = History()
    ) -> [Condition] {
        let policy = site.alerts
        var found: [Condition] = []
        func age(_ date: Date) -> String { duration(now.timeIntervalSince(date)) }
        for source in status.sources {
            let subject = source.node + "/" + source.source
            if source.late {
                let newest =
                    source.newest.map { "its newest is \($0.stamp), \(age($0.created ?? now)) old" } ?? "it has none"
                found.append(
                    Condition(
                        rule: .backupMissing, subject: subject, node: source.node,
                        summary:
                            "source \(subject) has no backup since its slot at \(source.lastSlot.map(iso) ?? "?") (\(newest))"
                    ))
            }
            if let newest = source.newest, let made = newest.created,
                now.timeIntervalSince(made) > policy.notOffBoxAfter
            {
                let wanted = site.copiesWanted(node: source.node, source: source.source)
                let intact = source.copies.filter { $0.state == .intact }.map(\.node)
                if intact.count < wanted {
                    found.append(
                        Condition(
                            rule: .notOffBox, subject: subject, node: source.node,
                            summary:
                                "the newest backup of \(subject) (\(newest.stamp), \(age(made)) old) has \(intact.count) of \(wanted) copies off its box"
                                + (intact.isEmpty ? "" : " (on \(intact.joined(separator: ", ")))")))
                }
            }
            for copy in source.copies where copy.verifyOverdue {
                found.append(
                    Condition(
                        rule: .verifyOverdue, subject: "\(copy.node):\(subject)", node: copy.node,
                        summary:
                            "the copy of \(subject)'s newest backup on \(copy.node) was \(copy.verifiedAt.map { "last verified \(age($0)) ago" } ?? "never verified")"
                    ))
            }
            if let hold = source.purgeHold {
                found.append(Condition(rule: .regressionHeld, subject: subject, node: source.node, summary: hold))
            }
        }
        for copy in failed {
            found.append(
                Condition(
                    rule: .mutant, subject: "\(copy.node):\(copy.path)", node: copy.node,
                    summary:
                        "the copy of \(copy.path) on \(copy.node) is \(copy.state.rawValue)\(copy.problem.map { ": \($0)" } ?? "")"
                ))
        }
        for node in nodes where site.node(node.name) != nil {
            if let free = node.diskFree, let total = node.diskTotal, total > 0,
                Double(free) / Double(total) < policy.diskFreeMin
            {
                found.append(
                    Condition(
                        rule: .diskLow, subject: node.name, node: node.name,
                        summary:
                            "the store disk of \(node.name) has \(formatBytes(free)) free of \(formatBytes(total)) (\(Int(Double(free) * 100 / Double(total))) %, below \(Int(policy.diskFreeMin * 100)) %)"
                    ))
            }
        }
        let heard = Dictionary(nodes.map { ($0.name, $0.lastHeartbeatAt) }, uniquingKeysWith: { a, _ in a })
        for name in site.nodes.keys.sorted() {
            let last = heard[name] ?? nil
            let silentAfter = max(policy.agentSilentAfter, 3 * Double(heartbeatSeconds))
            guard last.map({ now.timeIntervalSince($0) > silentAfter }) ?? true else { continue }
            found.append(
                Condition(
                    rule: .agentSilent, subject: name, node: name,
                    summary: "the agent of \(name) "
                        + (last.map { "has not been heard from for \(age($0))" } ?? "has not registered with this hub"))
            )
        }
        for pause in status.purge?.pauses ?? [] where now.timeIntervalSince(pause.at) > policy.purgePausedAfter {
            let scope = pause.node ?? "site"
            found.append(
                Condition(
                    rule: .purgePaused, subject: scope, node: pause.node,
                    summary:
                        "purging is paused \(pause.node.map { "on \($0)" } ?? "site-wide") since \(age(pause.at)) ago by \(pause.by)\(pause.reason.map { ": \($0)" } ?? "")"
                ))
        }
        found += historyConditions(history, policy: policy, now: now)
        return found
    }

    static func historyConditions(_ history: History, policy: AlertPolicy, now: Date) -> [Condition] {
        var found: [Condition] = []
        for certificate in history.certificates
        where certificate.notAfter.timeIntervalSince(now) < policy.certificateWarn {
            let left = certificate.notAfter.timeIntervalSince(now)
            found.append(
                Condition(
                    rule: .certificateExpiring, subject: certificate.name, node: certificate.node,
                    summary: "the certificate of \(certificate.name) "
                        + (left > 0
                            ? "expires in \(duration(left)) (\(iso(certificate.notAfter)))"
                            : "expired \(duration(-left)) ago (\(iso(certificate.notAfter)))")
                        + "; issue a new one with 'scm-backup pki issue'"))
        }
        // The last day's failures, per node, kind and source; a store refused for its marker on its own.
        let recent = history.failedTasks.filter { now.timeIntervalSince($0.endedAt ?? $0.createdAt) <= 86_400 }
        var groups: [String: [TaskInfo]] = [:]
        for task in recent {
            groups["\(task.node)/\(task.kind.rawValue)/\(task.source ?? "-")", default: []].append(task)
        }
        for (subject, tasks) in groups.sorted(by: { $0.key < $1.key }) where tasks.count >= policy.taskFailures {
            guard let last = tasks.max(by: { $0.id < $1.id }) else { continue }
            found.append(
                Condition(
                    rule: .taskFailing, subject: subject, node: last.node,
                    summary:
                        "\(tasks.count) \(last.kind.rawValue) tasks of \(subject) failed within a day; the last (task \(last.id)): \(last.lastErrorCode?.rawValue ?? "task-failed"): \(last.lastError ?? "no reason given")"
                ))
        }
        var markerNodes = Set<String>()
        for task in recent.sorted(by: { $0.id > $1.id }) where task.lastErrorCode == .storeMarker {
            guard markerNodes.insert(task.node).inserted else { continue }
            found.append(
                Condition(
                    rule: .storeMarker, subject: task.node, node: task.node,
                    summary:
                        "the store of \(task.node) is refused: \(task.lastError ?? "its marker is missing or another disk's")"
                ))
        }
        for (node, samples) in history.diskFree.sorted(by: { $0.key < $1.key }) {
            guard let full = DiskTrend.projectedFull(samples), full.timeIntervalSince(now) < policy.diskFullWithin,
                let free = samples.last?.value
            else { continue }
            found.append(
                Condition(
                    rule: .diskFilling, subject: node, node: node,
                    summary:
                        "the store disk of \(node) (\(formatBytes(Int64(free))) free) fills in about \(duration(max(0, full.timeIntervalSince(now)))) at the pace of the last week (projected full \(iso(full)))"
                ))
        }
        for (channel, error) in history.channelFailures.sorted(by: { $0.key < $1.key }) {
            found.append(
                Condition(
                    rule: .channelFailing, subject: channel, node: nil,
                    summary: "the \(channel) channel fails: \(error)"))
        }
        for schedule in history.schedules {
            guard let outcome = schedule.lastOutcome, outcome.hasPrefix("failed") || outcome.hasPrefix("missed") else {
                continue
            }
            found.append(
                Condition(
                    rule: .runNotStarted, subject: schedule.node + "/" + schedule.source, node: schedule.node,
                    summary:
                        "the scheduled run of \(schedule.node)/\(schedule.source) at \(schedule.lastSlot.map(iso) ?? "?") did not start: \(outcome)"
                ))
        }
        return found
    }

    /// `3d 4h`, `2h 5m`, `12m`, `45s`.
    static func duration(_ seconds: TimeInterval) -> String {
        let s = Int(max(0, seconds))
        if s >= 86_400 { return "\(s / 86_400)d \(s % 86_400 / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \(s % 3600 / 60)m" }
        if s >= 60 { return "\(s / 60)m" }
        return "\(s)s"
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func formatBytes(_ bytes: Int64) -> String { ByteSize.describe(bytes) }

}
