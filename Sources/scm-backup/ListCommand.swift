import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// Artifacts grouped by source, as `ls` and `du` show them.
struct SourceListing: Encodable {
    struct Artifact: Encodable {
        var stamp: String
        var revision: String?
        var size: Int64
        var ageSeconds: Int?
        var path: String
        var hasSidecar: Bool
        var isLast: Bool
        /// Why the artifact is flagged as a regression of its source, if it is.
        var regressions: [String]?
        /// Why the sidecar could not be read, if it could not.
        var sidecarProblem: String?
    }

    var origin: String
    var kind: String
    var source: String
    var artifacts: [Artifact]
    var totalBytes: Int64

    /// Groups a scan by source; artifacts outside the layout go under origin/kind/source "?".
    static func group(_ scan: StoreScan, store: Store, now: Date = Date()) throws -> [SourceListing] {
        var groups: [String: SourceListing] = [:]
        for a in scan.artifacts {
            let loc = a.location
            let key = loc?.sourceFolder ?? "?"
            var g =
                groups[key]
                ?? SourceListing(
                    origin: loc?.origin ?? "?", kind: loc?.kind ?? "?", source: loc?.source ?? "?", artifacts: [],
                    totalBytes: 0)
            let age = loc?.stampDate.map { Int(now.timeIntervalSince($0)) }
            var isLast = false
            if let loc {
                let link = store.root + "/" + loc.sourceFolder + "/last"
                // No link, or a folder in its place, simply means this artifact is not marked last.
                isLast = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == loc.stamp
            }
            var regressions: [String]?
            var sidecarProblem: String?
            if a.hasSidecar {
                do {
                    regressions = try DNA.decode(try FileSystem.readSmallFile(a.sidecarPath), path: a.sidecarPath)
                        .regressions
                } catch {
                    sidecarProblem = "\(error)"
                }
            }
            g.artifacts.append(
                Artifact(
                    stamp: loc?.stamp ?? "", revision: loc?.revision, size: a.size, ageSeconds: age, path: a.path,
                    hasSidecar: a.hasSidecar, isLast: isLast, regressions: regressions, sidecarProblem: sidecarProblem))
            g.totalBytes += a.size
            groups[key] = g
        }
        return groups.keys.sorted().map { groups[$0]! }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the artifacts of a store per source, with size, revision and age.",
        discussion: """
            With --store, the store folder on this machine is read. With --node, the catalog's \
            copies on that node of the site are listed, with their states (the legacy \
            scm-backup-rls), through the coordinator.
            """
    )

    @Option(help: "The store folder.")
    var store: String?
    @Option(help: "A node of the site: its copies as the catalog holds them.")
    var node: String?
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (store == nil) != (node == nil) else { throw ValidationError("Give either --store or --node.") }
    }

    func run() async throws {
        if let node { return try await listNode(node) }
        let store = self.store ?? ""
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            let scan = try store.scan()
            let listing = try SourceListing.group(scan, store: store)
            if output.json {
                try printer.printJSON(listing)
                return
            }
            for source in listing {
                print(
                    "\(source.origin)/\(source.kind)/\(source.source)  \(source.artifacts.count) artifacts, \(formatBytes(source.totalBytes))"
                )
                for a in source.artifacts {
                    let age = a.ageSeconds.map { formatAge(TimeInterval($0)) } ?? "-"
                    let flags =
                        (a.isLast ? " last" : "") + (a.hasSidecar ? "" : " NO-SIDECAR")
                        + (a.sidecarProblem == nil ? "" : " SIDECAR-UNREADABLE")
                        + (a.regressions.map { " REGRESSION: \($0.joined(separator: "; "))" } ?? "")
                    let name = a.stamp.isEmpty ? a.path : a.stamp
                    print("  \(name)  rev \(a.revision ?? "-")  \(formatBytes(a.size))  age \(age)\(flags)")
                }
            }
            for c in scan.collapsedLastLinks {
                print("warning: '\(c)' is a folder, not a link; run 'scm-backup lastlinks'.")
            }
            if listing.isEmpty { print("no artifacts in \(store.root)") }
        }
    }

    /// The catalog's copies on `node`, per source, newest last.
    private func listNode(_ node: String) async throws {
        try await runSiteCommand(json: output.json) {
            let artifacts = try await CoordinatorClient.with(try connection.endpoint()) {
                try await $0.artifacts(node: node)
            }
            let listing = NodeListing.group(artifacts, node: node)
            if output.json { return try Printer(json: true).printJSON(listing) }
            for source in listing {
                print(
                    "\(source.origin)/\(source.kind)/\(source.source)  \(source.copies.count) copies, \(formatBytes(source.totalBytes))"
                )
                for c in source.copies {
                    let age = c.ageSeconds.map { formatAge(TimeInterval($0)) } ?? "-"
                    print(
                        "  \(c.stamp)  rev \(c.revision ?? "-")  \(formatBytes(c.size))  age \(age)  \(c.state.rawValue)"
                            + (c.verifiedAt.map { "  verified \(ISO8601DateFormatter().string(from: $0))" } ?? ""))
                }
            }
            if listing.isEmpty { print("the catalog lists no copies on \(node)") }
        }
    }
}

/// A node's copies per source as the catalog holds them (`ls --node`, `du --node`).
struct NodeListing: Encodable {
    struct Copy: Encodable {
        var stamp: String
        var revision: String?
        var size: Int64
        var ageSeconds: Int?
        var path: String
        var state: CopyState
        var verifiedAt: Date?
    }

    var origin: String
    var kind: String
    var source: String
    var copies: [Copy]
    var totalBytes: Int64

    static func group(_ artifacts: [ArtifactInfo], node: String, now: Date = Date()) -> [NodeListing] {
        var groups: [String: NodeListing] = [:]
        for a in artifacts {
            guard let copy = a.copies.first(where: { $0.node == node }) else { continue }
            let key = "\(a.origin)/\(a.kind)/\(a.source)"
            var g =
                groups[key] ?? NodeListing(origin: a.origin, kind: a.kind, source: a.source, copies: [], totalBytes: 0)
            let made = a.created ?? ArtifactLocation.date(fromStamp: a.stamp)
            g.copies.append(
                Copy(
                    stamp: a.stamp, revision: a.revision, size: copy.size,
                    ageSeconds: made.map { Int(now.timeIntervalSince($0)) }, path: copy.path, state: copy.state,
                    verifiedAt: copy.verifiedAt))
            g.totalBytes += copy.size
            groups[key] = g
        }
        return groups.keys.sorted().map { key in
            var g = groups[key]!
            g.copies.sort { $0.stamp < $1.stamp }
            return g
        }
    }
}
