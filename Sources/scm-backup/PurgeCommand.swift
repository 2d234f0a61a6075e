import ArgumentParser
import BackupCore

struct PurgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete artifacts that the retention policy does not keep (a dry run unless --apply).",
        discussion: """
            Ages count from each artifact's creation; --keep-within is anchored at the newest good \
            artifact, so a dead server keeps its history. The newest artifact that verifies is \
            always kept, and so are artifacts flagged as regressions. Emptied date folders are \
            removed and 'last' follows.
            """
    )

    @Option(help: "The store folder.")
    var store: String
    @Option(name: .customLong("keep-last"), help: "Keep the newest N good artifacts of each source.")
    var keepLast: Int
    @Option(
        name: .customLong("keep-within"),
        help: "Also keep those made within this long of the newest good one, e.g. 7d, 12h, 2w.")
    var keepWithin: String?
    @Option(name: .customLong("keep-daily"), help: "Also keep the newest of each of the last N days.")
    var keepDaily = 0
    @Option(name: .customLong("keep-weekly"), help: "Also keep the newest of each of the last N weeks.")
    var keepWeekly = 0
    @Option(name: .customLong("keep-monthly"), help: "Also keep the newest of each of the last N months.")
    var keepMonthly = 0
    @Option(help: "Only the source of this name.")
    var source: String?
    @Flag(help: "Delete; without it nothing is changed.")
    var apply = false
    @OptionGroup var output: OutputOptions

    struct Item: Encodable {
        var path: String
        var keep: Bool
        var reasons: [String]
    }

    func validate() throws {
        for (value, flag) in [
            (keepLast, "--keep-last"), (keepDaily, "--keep-daily"), (keepWeekly, "--keep-weekly"),
            (keepMonthly, "--keep-monthly"),
        ]
        where value < 0 {
            throw ValidationError("\(flag) must be 0 or more, not \(value).")
        }
    }

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let policy = RetentionPolicy(
                keepLast: keepLast, keepWithin: try keepWithin.map(RetentionPolicy.parseDuration), keepDaily: keepDaily,
                keepWeekly: keepWeekly, keepMonthly: keepMonthly)
            let items = try Store(root: store).purge(policy, source: source, apply: apply)
            if output.json {
                try printer.printJSON(items.map { Item(path: $0.artifact.path, keep: $0.keep, reasons: $0.reasons) })
                return
            }
            for item in items {
                let verb = item.keep ? "keep  " : (apply ? "delete" : "would delete")
                print("\(verb) \(item.artifact.path)  (\(item.reasons.joined(separator: ", ")))")
            }
            let gone = items.filter { !$0.keep }.count
            print(
                apply
                    ? "\(gone) artifacts deleted, \(items.count - gone) kept"
                    : "dry run: \(gone) artifacts would be deleted, \(items.count - gone) kept; add --apply to delete")
        }
    }
}
