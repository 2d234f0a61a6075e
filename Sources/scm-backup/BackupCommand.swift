import ArgumentParser
import BackupCore
import Foundation

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up one source into the store as a verified .tar.gz artifact with its DNA sidecar.",
        discussion: """
            The artifact appears under <store>/<node>/<kind>/<name>/YYYY/MM/DD/HHMMSS/ only once it \
            is complete, fsynced and read back against its DNA; <name>/last then points to it. \
            svn is copied with svnadmin hotcopy, git with git bundle, trac with trac-admin hotcopy \
            (or a built-in equivalent), sqlite with the online backup API; with --svn-repo a Trac \
            environment and its repository are copied together under svnadmin freeze. A backup whose \
            revision went backwards, whose UUID changed or whose size collapsed is flagged.
            """
    )

    @Option(help: "The store folder. A new or empty folder gets a store marker on first use.")
    var store: String
    @Option(help: "The name of the node the source lives on (the origin).")
    var node: String
    @Option(help: "The kind of source: svn, git, trac, folder or sqlite.")
    var kind: String
    @Option(help: "The source's name in the store.")
    var name: String
    @Argument(help: "The source's path: repository, Trac environment, folder or database file.")
    var path: String
    @Option(
        name: .customLong("pre-backup"),
        help:
            "A shell command run before the snapshot (e.g. SQL that slims a Trac database); its failure stops the backup."
    )
    var preBackup: String?
    @Flag(name: .customLong("verify-snapshot"), help: "For svn: run svnadmin verify on the hotcopy before archiving.")
    var verifySnapshot = false
    @Option(
        name: .customLong("svn-repo"),
        help: "For trac: the environment's Subversion repository, backed up with it as one consistent pair.")
    var svnRepo: String?
    @Option(
        name: .customLong("svn-name"),
        help: "With --svn-repo: the repository's source name. The default is the environment's name.")
    var svnName: String?
    @OptionGroup var tools: ToolOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            guard let kind = SourceKind(rawValue: kind) else {
                throw BackupError(
                    .invalidArgument,
                    "Unknown kind '\(kind)': use one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            let store = try Store.openForWriting(store)
            var spec = SourceSpec(
                kind: kind, name: name, path: path, tools: try tools.tools(), verifySnapshot: verifySnapshot)
            // The local operator's own command, so a shell and this environment are right here.
            spec.preBackup = preBackup.map {
                PreBackupStep(
                    name: "--pre-backup", command: ["/bin/sh", "-c", $0],
                    environment: ProcessInfo.processInfo.environment)
            }
            let results: [PublishedArtifact]
            if let svnRepo {
                guard kind == .trac else { throw BackupError(.invalidArgument, "--svn-repo goes with --kind trac.") }
                var svn = SourceSpec(
                    kind: .svn, name: svnName ?? name, path: svnRepo, tools: spec.tools, verifySnapshot: verifySnapshot)
                svn.preBackup = nil
                let pair = try store.backupPair(svn: svn, trac: spec, node: node)
                results = [pair.trac, pair.svn]
            } else {
                results = [try store.backup(spec, node: node)]
            }
            struct Out: Encodable {
                var path: String
                var dna: DNA
                var warnings: [String]
            }
            let outs = results.map { Out(path: $0.path, dna: $0.dna, warnings: $0.warnings) }
            if output.json {
                if outs.count == 1 { try printer.printJSON(outs[0]) } else { try printer.printJSON(outs) }
            } else {
                for published in results {
                    print(
                        "backed up \(published.dna.kind ?? "") source '\(published.dna.source ?? "")' as \(published.path)"
                    )
                    print("  size \(formatBytes(published.dna.size)), revision \(published.dna.revision ?? "-")")
                    for warning in published.warnings { print("  warning: \(warning)") }
                }
            }
        }
    }
}
