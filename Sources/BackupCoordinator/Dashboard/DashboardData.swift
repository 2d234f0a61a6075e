import BackupCore
import BackupProtocol
import Foundation

/// What the dashboard's pages show, read from the domain objects the API uses: the status
/// board, the catalog, the runs and the alert book. No HTTP here (``DashboardServer`` is the
/// listener, ``DashboardPages`` the HTML).
public struct DashboardData: Sendable {
    let board: StatusBoard
    let catalog: Catalog
    let runs: Runs
    let nodes: NodeRegistry
    let wallClock: any WallClock

    /// How far back the node page's disk plot reaches, and the trend's window.
    static let diskWindow: TimeInterval = 90 * 86_400
    static let trendWindow: TimeInterval = 14 * 86_400

    public func site() async throws -> SiteStatus { try await board.status() }

    /// The source `source` of node `origin`, or nil when the site has none.
    public func source(origin: String, source: String) async throws -> SourcePage? {
        let status = try await board.status()
        guard let line = status.sources.first(where: { $0.node == origin && $0.source == source }) else { return nil }
        let artifacts = try await catalog.artifacts(node: nil, source: source, gone: false)
            .filter { $0.origin == origin }
            .sorted { ($0.created ?? .distantPast, $0.stamp) > ($1.created ?? .distantPast, $1.stamp) }
            .prefix(SourcePage.artifactLimit)
        let recent = try await runs.list(RunListQuery(limit: 200)).filter { run in
            run.sources.contains { $0.node == origin && $0.source == source }
        }
        return SourcePage(status: line, artifacts: Array(artifacts), runs: Array(recent.prefix(10)))
    }

    /// Source names of the site as `origin/source`, for `/sources/NAME` with a bare name.
    public func origins(of source: String) -> [String] {
        board.site.nodes.values.filter { $0.sources[source] != nil }.map(\.name).sorted()
    }

    public func node(_ name: String) async throws -> NodePage? {
        guard let node = try await nodes.list().first(where: { $0.name == name }) else { return nil }
        let now = wallClock.currentDate
        let free = try await catalog.samples("disk.free:\(name)", since: now.addingTimeInterval(-Self.diskWindow))
        let total = try await catalog.samples("disk.total:\(name)", since: now.addingTimeInterval(-Self.diskWindow))
        let totals = Dictionary(total.map { ($0.at, $0.value) }, uniquingKeysWith: { a, _ in a })
        let recent = free.filter { now.timeIntervalSince($0.at) <= Self.trendWindow }
        let tasks = try await catalog.tasks(TaskListQuery(limit: 50, node: name))
        return NodePage(
            node: node, disk: free.map { NodePage.DiskSample(at: $0.at, free: $0.value, total: totals[$0.at]) },
            projectedFull: DiskTrend.projectedFull(recent), tasks: tasks)
    }

    public func runList() async throws -> [RunInfo] { try await runs.list(RunListQuery(limit: 100)) }

    public func run(_ id: Int64) async throws -> RunInfo { try await runs.show(id) }

    public func alerts() async throws -> [AlertInfo] { try await catalog.alertBook().list(all: true) }
}

/// A cell of the site grid: the state its colour shows, and its text.
public struct GridCell: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case fresh, pending, late, missing, mutant, regression, held, overdue, none
    }
    public var state: State
    public var text: String

    /// The origin's own cell: its newest artifact's age, or why there is none.
    static func origin(_ s: SourceStatus) -> GridCell {
        guard let newest = s.newest else { return GridCell(state: .missing, text: "no backup") }
        let age = newest.ageSeconds.map(DashboardFormat.age) ?? newest.stamp
        if s.purgeHold != nil { return GridCell(state: .regression, text: age + " · regression") }
        if s.late { return GridCell(state: .late, text: age + " · late") }
        return GridCell(state: .fresh, text: age)
    }

    /// A backup node's cell: its copy of the newest artifact.
    static func copy(_ c: CopyStatus, newest: NewestArtifact?, purgeHeld: Bool) -> GridCell {
        guard newest != nil else { return GridCell(state: .none, text: "—") }
        let age = newest?.ageSeconds.map(DashboardFormat.age) ?? ""
        switch c.state {
        case nil, .missing?: return GridCell(state: .missing, text: "no copy")
        case .mutant?, .quarantined?, .mismatch?: return GridCell(state: .mutant, text: "mutant")
        default: break
        }
        if c.verifyOverdue { return GridCell(state: .overdue, text: age + " · verify overdue") }
        if purgeHeld { return GridCell(state: .held, text: age + " · purge held") }
        if c.verified { return GridCell(state: .fresh, text: age) }
        return GridCell(state: .pending, text: age + " · unverified")
    }
}

/// Numbers as the pages print them.
public enum DashboardFormat {
    public static func age(_ seconds: Int) -> String {
        switch seconds {
        case ..<0: "in the future"
        case ..<120: "\(seconds) s"
        case ..<7200: "\(seconds / 60) min"
        case ..<(3 * 86_400): "\(seconds / 3600) h"
        default: "\(seconds / 86_400) d"
        }
    }

    public static func bytes(_ n: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = n
        var i = 0
        while abs(v) >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(Int(v)) B" : String(format: "%.1f", v) + " " + units[i]
    }

    public static func date(_ d: Date?) -> String {
        guard let d else { return "" }
        return AlertRules.iso(d)
    }
}
