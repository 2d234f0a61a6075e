import BackupCore
import Foundation

/// What `GET /v1/tasks` lists, as query parameters: `state` (task states, comma-separated:
/// only tasks in one of them), `before` (a task id: only older tasks, the next page after a
/// page ending with that id) and `limit` (1 to 1000, default 100). Tasks come newest first, so
/// a site's growing history is read a page at a time and never whole.
public struct TaskListQuery: Sendable, Equatable {
    public static let defaultLimit = 100
    public static let maxLimit = 1000
    public var states: [TaskState]?
    public var before: Int64?
    public var limit: Int
    /// `node`: only the tasks of this node.
    public var node: String?

    public init(
        states: [TaskState]? = nil, before: Int64? = nil, limit: Int = TaskListQuery.defaultLimit, node: String? = nil
    ) {
        self.node = node
        self.states = states
        self.before = before
        self.limit = limit
    }

    /// Reads the query parameters through `parameter`; a value that is not one names itself.
    public init(parameter: (String) -> String?) throws {
        if let text = parameter("state") {
            states = try text.split(separator: ",", omittingEmptySubsequences: false).map { name in
                guard let state = TaskState(rawValue: String(name)) else {
                    throw BackupError(
                        .invalidArgument,
                        "'\(name.prefix(40))' is not a task state (state=\(TaskState.allCases.map(\.rawValue).joined(separator: ",")))."
                    )
                }
                return state
            }
        }
        before = try ListCursor.before(parameter("before"), what: "a task id")
        limit = try ListLimit.parse(parameter("limit"), default: Self.defaultLimit, max: Self.maxLimit)
        node = parameter("node")
    }

    /// The query string, without its '?' (empty for the defaults).
    public var queryString: String {
        var parts: [String] = []
        if let node {
            parts.append("node=" + (node.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? node))
        }
        if let states { parts.append("state=" + states.map(\.rawValue).joined(separator: ",")) }
        if let before { parts.append("before=\(before)") }
        if limit != Self.defaultLimit { parts.append("limit=\(limit)") }
        return parts.joined(separator: "&")
    }
}

/// A list's `before` query parameter: the id of the last item of the page before.
public enum ListCursor {
    /// `text` as an id above 0; nil when absent; `invalid-argument` naming it otherwise.
    public static func before(_ text: String?, what: String) throws -> Int64? {
        guard let text else { return nil }
        guard let id = Int64(text), id > 0 else {
            throw BackupError(.invalidArgument, "before='\(text.prefix(40))' is not \(what).")
        }
        return id
    }
}

/// A list's `limit` query parameter.
public enum ListLimit {
    /// `text` as a limit in 1...`max`; `defaultValue` when absent.
    public static func parse(_ text: String?, default defaultValue: Int, max: Int) throws -> Int {
        guard let text else { return defaultValue }
        guard let limit = Int(text), (1...max).contains(limit) else {
            throw BackupError(.invalidArgument, "limit='\(text.prefix(40))' is not a number from 1 to \(max).")
        }
        return limit
    }
}
