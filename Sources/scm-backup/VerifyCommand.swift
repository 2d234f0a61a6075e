import ArgumentParser
import BackupCore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the DNA of artifacts and compare it with their sidecars; list mutants.",
        discussion: """
            Works on any tree in the store layout, legacy ones included (MD5 and size are checked \
            where a legacy sidecar has nothing else). Exit 4 if any artifact is a mutant, 3 if any \
            could not be verified (missing or unreadable sidecar, unreadable file), else 0.
            """
    )

    @Option(help: "The store folder.")
    var store: String
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

    func run() throws {
        let printer = Printer(json: output.json)
        var exit: ExitCode?
        try printer.run {
            let store = Store(root: store)
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
