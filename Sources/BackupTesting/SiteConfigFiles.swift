import BackupCore
import Foundation

/// Writes the TOML configuration files of a test site: the hub's (`[coordinator]`, nodes,
/// sources, pairings) and an agent's (`[agent]`, `[tools]`).
public enum SiteConfigFiles {
    /// A node of the site file.
    public struct Node: Sendable {
        public var name: String
        public var roles: [String]
        /// Sources as (name, kind, path).
        public var sources: [(name: String, kind: String, path: String)]
        /// More lines of a source's table, by source name (`svn_source = "repo"`).
        public var sourceExtra: [String: String]
        /// More lines of the node's own table (`max_tasks = 2`).
        public var extra: String
        public init(
            _ name: String, roles: [String] = ["server"], sources: [(name: String, kind: String, path: String)] = [],
            sourceExtra: [String: String] = [:], extra: String = ""
        ) {
            self.extra = extra
            self.name = name
            self.roles = roles
            self.sources = sources
            self.sourceExtra = sourceExtra
        }
    }

    /// A TOML basic string.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// The hub's file; `pki` holds `ca.pem` and `revoked.json`, `certs` the hub's certificate.
    public static func writeCoordinator(
        _ path: String, listen: String, certs: String, pki: String, database: String, leaseSeconds: Double = 60,
        nodes: [Node], pairings: [(server: String, backup: String)] = [], extra: String = "",
        pairingExtra: [String: String] = [:], schedule: String = "default = \"off\"", tables: String = ""
    ) throws {
        // Tests queue their own tasks: no source fires by itself unless a test gives a schedule,
        // and no nightly inventory or verify comes (a CI run may fall into the window).
        var text = """
            [coordinator]
            listen = \(quote(listen))
            certificate = \(quote(certs + "/hub.pem"))
            key = \(quote(certs + "/hub.key"))
            ca = \(quote(pki + "/ca.pem"))
            revoked = \(quote(pki + "/revoked.json"))
            database = \(quote(database))
            lease_seconds = \(leaseSeconds)
            retry_seconds = 1
            purge_key = \(quote(pki + "/purge-signing.key"))
            \(extra)

            [schedule]
            \(schedule)

            [verify]
            window = "off"

            """
        if !tables.isEmpty { text += tables + "\n" }
        for node in nodes {
            text +=
                "\n[nodes.\(node.name)]\nroles = [\(node.roles.map(quote).joined(separator: ", "))]\naddresses = [\"127.0.0.1\"]\n"
            if !node.extra.isEmpty { text += node.extra + "\n" }
            for s in node.sources {
                text += "\n[nodes.\(node.name).sources.\(s.name)]\nkind = \(quote(s.kind))\npath = \(quote(s.path))\n"
                if let more = node.sourceExtra[s.name] { text += more + "\n" }
            }
        }
        for p in pairings {
            text += "\n[[pairings]]\nserver = \(quote(p.server))\nbackup = \(quote(p.backup))\n"
            if let more = pairingExtra[p.backup] { text += more + "\n" }
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// An agent's file; `tools` maps `[tools]` keys (svnadmin, trac_admin, ...) to paths.
    /// Without `sourceRoots` its sources may lie anywhere in the folder of `path`.
    public static func writeAgent(
        _ path: String, coordinator: String, name: String, certs: String, pki: String, store: String,
        storeID: String? = nil, leaseWait: Int = 2, sourceRoots: [String]? = nil, tools: [String: String] = [:],
        dataPort: Bool = false, extra: String = ""
    ) throws {
        // As an operator does with `scm-backup init-store`: the store gets its marker once, and
        // the agent's file names its id.
        let id = try storeID ?? Store(root: store).adopt().id
        var text = """
            [agent]
            coordinator = \(quote(coordinator))
            certificate = \(quote(certs + "/\(name).pem"))
            key = \(quote(certs + "/\(name).key"))
            ca = \(quote(pki + "/ca.pem"))
            store = \(quote(store))
            lease_wait_seconds = \(leaseWait)
            purge_key = \(quote(pki + "/purge-signing.pub"))
            store_id = \(quote(id))

            """
        let roots = sourceRoots ?? [(path as NSString).deletingLastPathComponent]
        text += "source_roots = [\(roots.map(quote).joined(separator: ", "))]\n"
        if dataPort {
            text += "data_listen = \"127.0.0.1:0\"\nticket_key = \(quote(pki + "/ticket-signing.pub"))\n"
        }
        if !extra.isEmpty { text += extra + "\n" }
        if !tools.isEmpty {
            text += "\n[tools]\n"
            for (k, v) in tools.sorted(by: { $0.key < $1.key }) { text += "\(k) = \(quote(v))\n" }
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
