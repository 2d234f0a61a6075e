import BackupCore
import BackupProtocol
import Foundation
import GRDB

/// Which configured sources their own agent would refuse, judged from what the agent reported
/// at register (its `source_roots` and pre-backup step names): shown in `status` and `config
/// check` so that a misconfigured source is seen before its first night fails. Only a hint;
/// the agent decides itself, on its own file system (links resolved), with every backup.
public enum AgentReadiness {
    /// Why an agent with `roots` and `steps` would refuse `definition`, or nil. The paths are
    /// compared as written (the coordinator cannot resolve links on the agent's machine).
    public static func refusal(_ definition: SourceDefinition, node: String, roots: [String]?, steps: [String]?)
        -> String?
    {
        if let roots {
            guard !roots.isEmpty else { return "\(node)'s agent.toml defines no source_roots: it backs up nothing" }
            for path in [definition.path] + (definition.svnSource.map { [$0.path] } ?? [])
            where !SourceConfinement.lies(path, in: roots) {
                return "'\(path)' lies outside \(node)'s source_roots (\(roots.joined(separator: ", ")))"
            }
        }
        if let name = definition.preBackup, let steps, !steps.contains(name) {
            return "pre-backup step '\(name)' is not defined in \(node)'s agent.toml"
                + (steps.isEmpty ? " (it defines none)" : " (it has: \(steps.joined(separator: ", ")))")
        }
        return nil
    }
}

extension Catalog {
    /// What each agent reported at register: its source roots and pre-backup step names.
    typealias AgentReports = [(node: String, roots: [String]?, steps: [String]?)]

    static func agentReports(_ db: Database) throws -> AgentReports {
        // Before the run migration (a catalog of an older hub read by `config check`) there is
        // nothing reported.
        guard try db.columns(in: "node").contains(where: { $0.name == "sourceRoots" }) else { return [] }
        return try Row.fetchAll(db, sql: "SELECT name, sourceRoots, preBackupSteps FROM node").map { row in
            let name: String = row["name"]
            return (
                name, try Self.decodeList(row["sourceRoots"], "sourceRoots", node: name),
                try Self.decodeList(row["preBackupSteps"], "preBackupSteps", node: name)
            )
        }
    }

    /// Each configured source (`node/source`) its registered agent would refuse, with why.
    public func sourceRefusals(_ site: SiteConfiguration) async throws -> [String: String] {
        Self.refusals(site, try await pool.read { db in try Self.agentReports(db) })
    }

    /// ``sourceRefusals(_:)`` from the catalog file at `path`, opened read-only (never
    /// migrated: a running hub may own it); empty when there is no such file yet.
    public static func sourceRefusals(_ site: SiteConfiguration, catalogAt path: String) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        var config = Configuration()
        config.readonly = true
        let queue: DatabaseQueue
        do { queue = try DatabaseQueue(path: path, configuration: config) } catch {
            throw BackupError(.io, "The catalog '\(path)' cannot be opened to read what agents reported: \(error).")
        }
        let reports = try queue.read { db in try db.tableExists("node") ? try agentReports(db) : [] }
        return refusals(site, reports)
    }

    static func refusals(_ site: SiteConfiguration, _ reported: AgentReports) -> [String: String] {
        var refusals: [String: String] = [:]
        for (name, roots, steps) in reported {
            guard let node = site.node(name), roots != nil || steps != nil else { continue }
            for (source, definition) in node.sources {
                if let why = AgentReadiness.refusal(definition, node: name, roots: roots, steps: steps) {
                    refusals[name + "/" + source] = why
                }
            }
        }
        return refusals
    }

    /// A JSON list of strings stored by ``register(name:role:_:now:)`` (nil when the agent
    /// reported none). The catalog wrote it itself, so one it cannot read is damage, named.
    private static func decodeList(_ text: String?, _ column: String, node: String) throws -> [String]? {
        guard let text else { return nil }
        do { return try JSONDecoder().decode([String].self, from: Data(text.utf8)) } catch {
            throw BackupError(
                .io,
                "The catalog's \(column) of node '\(node)' is not a JSON list of strings: '\(text.prefix(80))'; the agent's next register rewrites it.",
                cause: error)
        }
    }
}
