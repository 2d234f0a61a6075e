import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the DNA of artifacts and compare it with their sidecars; list mutants.",
        discussion: """
            Works on any tree in the store layout, legacy ones included (MD5 and size are checked \
            where a legacy sidecar has nothing else). Exit 4 if any artifact is a mutant, 3 if any \
            could not be verified (missing or unreadable sidecar, unreadable file), else 0.

            With --node instead of --store, the node's agent verifies its copies as a task \
            (admin): every copy, or with --older-than-days and --budget those not verified for \
            that long, oldest first, within that many bytes of reading. A mutant is then moved to \
            <store>/.quarantine, reported, and repaired from an intact copy on another node.
            """
    )

    @Option(help: "The store folder.")
    var store: String?
    @Option(help: "Verify on this node of the site, as a task of its agent (instead of --store).")
    var node: String?
    @Option(name: .customLong("older-than-days"), help: "With --node: only copies not verified for this many days.")
    var olderThanDays: Int?
    @Option(help: "With --node: at most this many bytes of reading (e.g. 50GiB).")
    var budget: String?
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Also read every archive through (all members and the gzip CRC), in the same pass.")
    var deep = false
    @Argument(help: "Artifacts, sidecars or folders to verify; the whole store when none are given.")
    var paths: [String] = []
    @OptionGroup var output: OutputOptions

    struct Item: Encodable {
        var path: String
        var status: String
        var reasons: [String]
        var size: Int64
        /// Why the artifact is flagged as a regression of its source, if it is.
        var regressions: [String]?
    }

    struct Report: Encodable {
        var artifacts: [Item]
        var orphanSidecars: [String]
        var counts: [String: Int]
    }

    func run() async throws {
        if let node {
            guard store == nil else { throw ValidationError("Give --store or --node, not both.") }
            return try await runSiteCommand(json: output.json) {
                var budgetBytes: Int64?
                if let budget {
                    guard let bytes = parseBytes(budget) else {
                        throw BackupError(
                            .invalidArgument, "--budget '\(budget)' is not a size such as 50GiB or 800MiB.")
                    }
                    budgetBytes = bytes
                }
                let request = SubmitTaskRequest(
                    kind: .verify, node: node, olderThanDays: olderThanDays, budgetBytes: budgetBytes)
                let task = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.submit(request) }
                if output.json { return try Printer(json: true).printJSON(task) }
                print(
                    "queued task \(task.id): verify on \(node)"
                        + (task.artifacts.map { " of \($0.count) copies due" } ?? " of every copy"))
            }
        }
        guard let storePath = store else { throw ValidationError("Give --store DIR (local) or --node NODE (site).") }
        let printer = Printer(json: output.json)
        var exit: ExitCode?
        try printer.run {
            let store = Store(root: storePath)
            let scan = try store.scan(paths)
            var items: [Item] = []
            var counts: [String: Int] = [
                "ok": 0, "mutant": 0, "missing-sidecar": 0, "invalid-sidecar": 0, "unreadable": 0,
            ]
            for artifact in scan.artifacts {
                let result = store.verify(artifact, deep: deep)
                let reasons: [String]
                switch result.status {
                case .intact, .missingSidecar: reasons = []
                case .mutant(let r): reasons = r
                case .invalidSidecar(let r), .unreadable(let r): reasons = [r]
                }
                counts[result.status.label, default: 0] += 1
                let item = Item(
                    path: artifact.path, status: result.status.label, reasons: reasons, size: artifact.size,
                    regressions: result.dna?.regressions)
                items.append(item)
                if !output.json {
                    let label = result.status == .intact ? "ok" : result.status.label.uppercased()
                    print("\(label.padding(toLength: 16, withPad: " ", startingAt: 0)) \(artifact.path)")
                    for reason in reasons { print("    \(reason)") }
                    for regression in item.regressions ?? [] { print("    regression: \(regression)") }
                }
            }
            counts["orphan-sidecar"] = scan.orphanSidecars.count
            if output.json {
                try printer.printJSON(Report(artifacts: items, orphanSidecars: scan.orphanSidecars, counts: counts))
            } else {
                for orphan in scan.orphanSidecars {
                    print("\("ORPHAN-SIDECAR".padding(toLength: 16, withPad: " ", startingAt: 0)) \(orphan)")
                }
                print(
                    "\(items.count) artifacts: \(counts["ok"]!) ok, \(counts["mutant"]!) mutant, \(counts["missing-sidecar"]!) without sidecar, \(counts["invalid-sidecar"]!) with an unreadable sidecar, \(counts["unreadable"]!) unreadable; \(scan.orphanSidecars.count) sidecars without artifact"
                )
            }
            if counts["mutant"]! > 0 {
                exit = Exit.mutants
            } else if counts["missing-sidecar"]! + counts["invalid-sidecar"]! + counts["unreadable"]!
                + scan.orphanSidecars.count > 0
            {
                exit = Exit.partial
            }
        }
        if let exit { throw exit }
    }
}
