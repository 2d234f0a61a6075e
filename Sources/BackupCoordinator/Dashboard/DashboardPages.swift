import BackupCore
import BackupProtocol
import Foundation
import Mustache

/// The dashboard's HTML, rendered on the server with mustache templates from the page types of
/// ``DashboardData``. Every string a node, an agent or a repository supplies reaches the page
/// through mustache's `{{…}}` (HTML-escaped) after ``HTMLText/clean(_:)``; the plots are SVG
/// made by ``SVGPlot``, which escapes its own labels. No script, no external style or font:
/// `/style.css` is ours, and the Content-Security-Policy forbids everything else.
public struct DashboardPages: Sendable {
    let library: MustacheLibrary

    public init() throws {
        var templates: [String: MustacheTemplate] = [:]
        for (name, text) in Self.templates { templates[name] = try MustacheTemplate(string: text) }
        library = MustacheLibrary(templates: templates)
    }

    func render(_ name: String, title: String, firing: Int, now: Date, _ context: [String: Any]) -> String {
        var context = context
        context["title"] = HTMLText.clean(title)
        context["generated"] = DashboardFormat.date(now)
        if firing > 0 { context["firing"] = firing }
        return library.render(context, withTemplate: name) ?? "template \(name) is missing"
    }

    // MARK: pages

    public func site(_ status: SiteStatus, firing: Int) -> String {
        let columns = status.nodes.map(\.name)
        let held = Set(
            (status.purge?.stages ?? []).filter { $0.paused != nil || !$0.holds.isEmpty }.map(\.node)
                + (status.purge?.pauses ?? []).compactMap(\.node))
        let rows: [[String: Any]] = status.sources.map { s in
            let cells: [[String: Any]] = columns.map { node in
                let cell: GridCell
                if node == s.node {
                    cell = GridCell.origin(s)
                } else if let copy = s.copies.first(where: { $0.node == node }) {
                    cell = GridCell.copy(copy, newest: s.newest, purgeHeld: held.contains(node))
                } else {
                    cell = GridCell(state: .none, text: "")
                }
                return [
                    "state": cell.state.rawValue, "text": cell.text,
                    "title": "\(HTMLText.clean(s.source)) on \(node): \(cell.state.rawValue)",
                ]
            }
            return [
                "name": HTMLText.clean("\(s.node)/\(s.source)"), "url": Self.path(s.node, s.source),
                "kind": s.kind, "cells": cells,
                "problem": HTMLText.clean(s.refusal ?? s.purgeHold ?? ""),
            ]
        }
        let nodes: [[String: Any]] = status.nodes.map { n in
            [
                "name": HTMLText.clean(n.name), "url": Self.path(n.name), "roles": n.roles.joined(separator: ", "),
                "online": n.online ? "online" : "offline", "onlineClass": n.online ? "fresh" : "missing",
                "free": Self.disk(free: n.diskFree, total: n.diskTotal), "queued": n.tasksQueued,
                "running": n.tasksRunning,
            ]
        }
        return render(
            "site", title: "Site", firing: firing, now: status.generatedAt,
            [
                "columns": columns.map { ["name": HTMLText.clean($0), "url": Self.path($0)] }, "rows": rows,
                "nodes": nodes, "legend": GridCell.State.allCases.filter { $0 != .none }.map(\.rawValue),
                "empty": rows.isEmpty,
            ])
    }

    public func source(_ page: SourcePage, firing: Int, now: Date) -> String {
        let s = page.status
        var bySeries: [String: [(at: Date, value: Double)]] = [:]
        for a in page.artifacts {
            guard let made = a.created ?? ArtifactLocation.date(fromStamp: a.stamp) else { continue }
            for copy in a.copies where copy.state != .missing {
                bySeries[copy.node, default: []].append((made, Double(copy.size)))
            }
        }
        let plot = SVGPlot(
            title: "Artifact size of \(s.node)/\(s.source) on each node",
            series: bySeries.keys.sorted().map { SVGPlot.Series(name: $0, points: bySeries[$0] ?? []) },
            format: { DashboardFormat.bytes($0) })
        let artifacts: [[String: Any]] = page.artifacts.prefix(200).map { a in
            [
                "stamp": HTMLText.clean(a.stamp), "created": DashboardFormat.date(a.created),
                "size": DashboardFormat.bytes(Double(a.size)), "revision": HTMLText.clean(a.revision ?? ""),
                "flags": HTMLText.clean((a.regressions ?? []).joined(separator: "; ")),
                "copies": a.copies.map { c in
                    [
                        "node": HTMLText.clean(c.node), "state": c.state.rawValue,
                        "verified": DashboardFormat.date(c.verifiedAt), "problem": HTMLText.clean(c.problem ?? ""),
                    ]
                },
            ]
        }
        return render(
            "source", title: "\(s.node)/\(s.source)", firing: firing, now: now,
            [
                "kind": s.kind, "plot": plot.render(), "origin": HTMLText.clean(s.node), "originURL": Self.path(s.node),
                "cell": GridCell.origin(s).text, "state": GridCell.origin(s).state.rawValue,
                "nextRun": DashboardFormat.date(s.nextRun), "refusal": HTMLText.clean(s.refusal ?? ""),
                "hold": HTMLText.clean(s.purgeHold ?? ""), "artifacts": artifacts, "count": page.artifacts.count,
                "runs": page.runs.map { Self.runRow($0) },
            ])
    }

    public func node(_ page: NodePage, firing: Int, now: Date) -> String {
        let n = page.node
        var series = [
            SVGPlot.Series(name: "free", points: page.disk.map { ($0.at, $0.free) }),
            SVGPlot.Series(
                name: "used", points: page.disk.compactMap { d in d.total.map { (d.at, $0 - d.free) } }),
        ]
        if let full = page.projectedFull, let last = page.disk.last {
            series.append(SVGPlot.Series(name: "trend", points: [(last.at, last.free), (full, 0)], dashed: true))
        }
        let plot = SVGPlot(title: "Disk of \(n.name)", series: series, format: { DashboardFormat.bytes($0) })
        let tasks: [[String: Any]] = page.tasks.map { t in
            [
                "id": t.id, "kind": t.kind.rawValue, "source": HTMLText.clean(t.source ?? ""),
                "state": t.state.rawValue, "stateClass": Self.stateClass(t.state.rawValue),
                "created": DashboardFormat.date(t.createdAt), "ended": DashboardFormat.date(t.endedAt),
                "error": HTMLText.clean(t.lastError ?? ""),
            ]
        }
        return render(
            "node", title: n.name, firing: firing, now: now,
            [
                "plot": plot.render(), "roles": (n.roles ?? []).joined(separator: ", "),
                "online": n.online ? "online" : "offline", "onlineClass": n.online ? "fresh" : "missing",
                "free": Self.disk(free: n.diskFree, total: n.diskTotal),
                "full": page.projectedFull.map { "at this pace the disk is full on \(DashboardFormat.date($0))" }
                    ?? "the disk is not filling",
                "tasks": tasks,
            ])
    }

    public func runs(_ runs: [RunInfo], firing: Int, now: Date) -> String {
        render("runs", title: "Runs", firing: firing, now: now, ["runs": runs.map { Self.runRow($0) }])
    }

    public func run(_ run: RunInfo, firing: Int, now: Date) -> String {
        let sources: [[String: Any]] = run.sources.map { s in
            [
                "name": HTMLText.clean("\(s.node)/\(s.source)"), "url": Self.path(s.node, s.source),
                "state": s.state.rawValue, "stateClass": Self.stateClass(s.state.rawValue),
                "backup": s.backupTask.map { "\($0)" } ?? "",
                "artifacts": HTMLText.clean(s.artifacts.joined(separator: ", ")),
                "copies": HTMLText.clean(s.copies.map { "\($0.node) \($0.state.rawValue)" }.joined(separator: ", ")),
                "reason": HTMLText.clean(s.reason ?? ""),
            ]
        }
        var row = Self.runRow(run)
        row["sources"] = sources
        return render("run", title: "Run \(run.id)", firing: firing, now: now, row)
    }

    public func alerts(_ alerts: [AlertInfo], firing: Int, now: Date) -> String {
        let rows: [[String: Any]] = alerts.map { a in
            [
                "rule": a.rule.rawValue, "subject": HTMLText.clean(a.subject), "phase": a.phase.rawValue,
                "phaseClass": a.phase == .firing ? "missing" : a.phase == .pending ? "late" : "fresh",
                "summary": HTMLText.clean(a.summary), "since": DashboardFormat.date(a.since),
                "resolved": DashboardFormat.date(a.resolvedAt), "quiet": HTMLText.clean(a.quiet ?? ""),
                "delivery": HTMLText.clean(a.deliveryError ?? ""),
            ]
        }
        return render("alerts", title: "Alerts", firing: firing, now: now, ["alerts": rows, "none": rows.isEmpty])
    }

    public func error(status: Int, message: String, now: Date) -> String {
        render(
            "error", title: "\(status)", firing: 0, now: now,
            ["status": status, "message": HTMLText.clean(message)])
    }

    // MARK: helpers

    static func runRow(_ r: RunInfo) -> [String: Any] {
        [
            "id": r.id, "trigger": r.trigger.rawValue, "state": r.state.rawValue,
            "stateClass": stateClass(r.state.rawValue), "started": DashboardFormat.date(r.startedAt),
            "finished": DashboardFormat.date(r.finishedAt), "by": HTMLText.clean(r.requestedBy ?? ""),
            "done": "\(r.tasksDone)/\(r.tasksTotal)", "summary": HTMLText.clean(r.summary ?? ""),
        ]
    }

    static func stateClass(_ state: String) -> String {
        switch state {
        case "succeeded", "verified": "fresh"
        case "failed", "cancelled": "missing"
        case "partial": "late"
        default: "pending"
        }
    }

    static func disk(free: Int64?, total: Int64?) -> String {
        guard let free else { return "" }
        guard let total, total > 0 else { return DashboardFormat.bytes(Double(free)) + " free" }
        return
            "\(DashboardFormat.bytes(Double(free))) free of \(DashboardFormat.bytes(Double(total))) (\(Int((Double(free) / Double(total) * 100).rounded())) %)"
    }

    /// A dashboard path of percent-encoded names (`/` inside a name is encoded too).
    static func path(_ components: String...) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return components.map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }.joined(
            separator: "/")
    }
}
