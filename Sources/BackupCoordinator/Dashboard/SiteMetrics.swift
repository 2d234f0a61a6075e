import BackupCore
import BackupProtocol
import CoreMetrics
import Foundation
import Prometheus

/// `/metrics` in the Prometheus text format, with help text on every family. Two kinds of
/// series:
///
/// - the site's state, read from the catalog at each scrape into a fresh registry (newest
///   artifact per source and node, copies, verify age, mutants, disks, agents, certificates,
///   alerts, the last runs' durations): always true to the catalog, nothing to go stale;
/// - events since the coordinator started (task outcomes by kind and error code, transfer bytes
///   and rate), counted through swift-metrics with a factory of our own that gives each family
///   its help (``HelpedMetricsFactory``) — no process-wide bootstrap, so several coordinators
///   (tests) keep their own.
///
/// No label names an artifact or a task: a site of S sources on N nodes has about 5·S·N
/// series (`ops/bench/dashboard.sh` prints the count).
public final class SiteMetrics: Sendable {
    let events = PrometheusCollectorRegistry()
    let factory: HelpedMetricsFactory
    let board: StatusBoard
    let catalog: Catalog
    let certificateFiles: [(name: String, path: String)]
    let health: ChannelHealth
    let wallClock: any WallClock

    init(
        board: StatusBoard, catalog: Catalog, certificateFiles: [(name: String, path: String)], health: ChannelHealth,
        wallClock: any WallClock
    ) {
        factory = HelpedMetricsFactory(registry: events)
        self.board = board
        self.catalog = catalog
        self.certificateFiles = certificateFiles
        self.health = health
        self.wallClock = wallClock
    }

    /// The help of every family counted through swift-metrics.
    static let eventHelp: [String: String] = [
        "scm_backup_task_results_total":
            "Task results the coordinator accepted since it started, by task kind, outcome (succeeded, failed, cancelled) and error code (none when it succeeded).",
        "scm_backup_transfer_bytes_total":
            "Bytes of artifacts received and verified by each backup node since the coordinator started.",
        "scm_backup_transfer_rate_bytes_per_second":
            "The rate of each backup node's last finished transfer, as its agent measured it.",
    ]

    /// Counts a finished task (its result was accepted).
    func taskFinished(_ task: TaskInfo) {
        guard task.state.isFinal else { return }
        CoreMetrics.Counter(
            label: "scm_backup_task_results_total",
            dimensions: [
                ("kind", task.kind.rawValue), ("outcome", task.state.rawValue),
                ("code", task.lastErrorCode?.rawValue ?? (task.state == .succeeded ? "none" : "unknown")),
            ], factory: factory
        ).increment()
        guard task.kind == .transfer, task.state == .succeeded else { return }
        if let bytes = task.progress?.bytesTotal ?? task.progress?.bytesDone {
            CoreMetrics.Counter(
                label: "scm_backup_transfer_bytes_total", dimensions: [("node", task.node)], factory: factory
            ).increment(by: Int(bytes))
        }
        if let rate = task.progress?.bytesPerSecond {
            CoreMetrics.Gauge(
                label: "scm_backup_transfer_rate_bytes_per_second", dimensions: [("node", task.node)],
                factory: factory
            ).record(rate)
        }
    }

    /// The text of one scrape.
    public func scrape() async throws -> [UInt8] {
        let now = wallClock.currentDate
        let state = PrometheusCollectorRegistry()
        let status = try await board.status()
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
            state.makeGauge(descriptor: described(name, help), labels: labels).set(value)
        }
        for s in status.sources {
            let source = "\(s.node)/\(s.source)"
            gauge(
                "scm_backup_source_late", "1 when the source has no backup since its last scheduled slot and grace.",
                [("source", source)], s.late ? 1 : 0)
            let verified = s.copies.filter(\.verified).count
            gauge(
                "scm_backup_verified_copies", "Copies of the source's newest artifact verified within verify max_age.",
                [("source", source)], Double(verified))
            guard let newest = s.newest else { continue }
            var holders = [s.node]
            for copy in s.copies {
                if let state = copy.state, state != .missing { holders.append(copy.node) }
                if let at = copy.verifiedAt {
                    gauge(
                        "scm_backup_verify_age_seconds",
                        "Seconds since the copy of the source's newest artifact on the node was last verified.",
                        [("source", source), ("node", copy.node)], now.timeIntervalSince(at))
                }
            }
            for node in holders {
                if let made = newest.created {
                    gauge(
                        "scm_backup_newest_artifact_timestamp_seconds",
                        "When the source's newest artifact that the node holds was made (Unix time).",
                        [("source", source), ("node", node)], made.timeIntervalSince1970)
                }
                gauge(
                    "scm_backup_newest_artifact_size_bytes", "The size of the source's newest artifact on the node.",
                    [("source", source), ("node", node)], Double(newest.size))
            }
        }
        var mutants: [String: Int] = [:]
        for copy in try await catalog.failedCopies() { mutants[copy.node, default: 0] += 1 }
        var online = 0
        for n in status.nodes {
            if n.online { online += 1 }
            gauge(
                "scm_backup_agent_online", "1 when the node's agent heartbeated within three heartbeats.",
                [("node", n.name)], n.online ? 1 : 0)
            gauge(
                "scm_backup_mutants", "Copies on the node that failed verification and await repair.",
                [("node", n.name)], Double(mutants[n.name] ?? 0))
            if let free = n.diskFree {
                gauge(
                    "scm_backup_disk_free_bytes", "Free bytes of the node's store disk, as its agent last reported.",
                    [("node", n.name)], Double(free))
            }
            if let total = n.diskTotal {
                gauge(
                    "scm_backup_disk_total_bytes", "Size of the node's store disk, as its agent last reported.",
                    [("node", n.name)], Double(total))
            }
            gauge(
                "scm_backup_tasks_active", "Tasks of the node queued or leased now.",
                [("node", n.name), ("state", "queued")], Double(n.tasksQueued))
            gauge(
                "scm_backup_tasks_active", "Tasks of the node queued or leased now.",
                [("node", n.name), ("state", "leased")], Double(n.tasksRunning))
        }
        state.makeGauge(descriptor: described("scm_backup_agents_online", "Agents online now.")).set(Double(online))
        var certificates = try await catalog.agentCertificates()
        for file in certificateFiles {
            // An unreadable certificate is raised by the certificate-expiring rule; here it has no series.
            if let notAfter = try? PEMFiles.certificate(file.path).notValidAfter {
                certificates.append(AlertRules.Certificate(name: file.name, node: nil, notAfter: notAfter))
            }
        }
        for c in certificates {
            gauge(
                "scm_backup_certificate_expiry_timestamp_seconds", "When the certificate expires (Unix time).",
                [("certificate", c.name)], c.notAfter.timeIntervalSince1970)
        }
        var firing: [String: Int] = [:]
        for rule in AlertRule.allCases { firing[rule.rawValue] = 0 }
        for alert in try await catalog.alertBook().list(all: false) where alert.phase == .firing {
            firing[alert.rule.rawValue, default: 0] += 1
        }
        for (rule, n) in firing.sorted(by: { $0.key < $1.key }) {
            gauge("scm_backup_alerts_firing", "Alerts firing now, by rule.", [("rule", rule)], Double(n))
        }
        for (channel, _) in health.current.sorted(by: { $0.key < $1.key }) {
            gauge(
                "scm_backup_alert_channel_failing", "1 while an alert channel's last attempt failed.",
                [("channel", channel)], 1)
        }
        var seen = Set<String>()
        for run in try await catalog.runs(RunListQuery(limit: 50)) {
            guard let finished = run.finishedAt, seen.insert(run.trigger.rawValue).inserted else { continue }
            gauge(
                "scm_backup_last_run_duration_seconds", "How long the last finished run of each trigger took.",
                [("trigger", run.trigger.rawValue)], finished.timeIntervalSince(run.startedAt))
            gauge(
                "scm_backup_last_run_finished_timestamp_seconds", "When the last run of each trigger finished.",
                [("trigger", run.trigger.rawValue)], finished.timeIntervalSince1970)
        }
        var out = state.emitToBuffer()
        events.emit(into: &out)
        return out
    }
}

/// A swift-metrics factory over a Prometheus registry that gives each family the help text of
/// ``SiteMetrics/eventHelp`` (swift-prometheus' own factory leaves help empty).
struct HelpedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let base: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        base = PrometheusMetricsFactory(registry: registry)
    }

    func help(_ label: String) -> String { SiteMetrics.eventHelp[label] ?? "scm-backup: \(label)." }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: described(label, help(label)), labels: dimensions)
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: described(label, help(label)), labels: dimensions)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        registry.makeGauge(descriptor: described(label, help(label)), labels: dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: described(label, help(label)), labels: dimensions)
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: described(label, help(label)), labels: dimensions, buckets: base.defaultDurationHistogramBuckets
        )
    }
    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        base.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

/// A family's whole name and its help.
func described(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
