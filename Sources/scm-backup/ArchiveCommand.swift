import ArgumentParser
import BackupCore

struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Inspect any .tar or .tar.gz: list it, read it through, or extract it safely.",
        subcommands: [List.self, Check.self, Extract.self]
    )

    struct Member: Encodable {
        var name: String
        var type: String
        var size: Int64
        var linkname: String?
        var mode: String
        var uid: Int64
        var gid: Int64
        var mtime: Int64
        var offset: Int64

        init(_ e: TarEntry) {
            name = e.path
            type = e.kind.description
            size = e.size
            linkname = e.linkTarget
            mode = String(e.mode, radix: 8)
            uid = e.uid
            gid = e.gid
            mtime = e.modificationTime
            offset = e.headerOffset
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an archive's members.")
        @Argument(help: "The archive.") var file: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let entries = try ArchiveInspector.list(file)
                if output.json {
                    try printer.printJSON(entries.map(Member.init))
                } else {
                    for e in entries {
                        let link = e.linkTarget.map { e.kind == .hardlink ? " link to \($0)" : " -> \($0)" } ?? ""
                        print(
                            "\(e.kind.description.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(e.size).padding(toLength: 12, withPad: " ", startingAt: 0)) \(e.path)\(link)"
                        )
                    }
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an archive through to its end; report the member and byte offset of any damage.")
        @Argument(help: "The archive.") var file: String
        @OptionGroup var output: OutputOptions

        struct Out: Encodable {
            var entries: Int
            var tarBytes: Int64
            var sha256: String?
            var size: Int64?
        }

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let report = try ArchiveInspector.check(file, digests: .sha256)
                if output.json {
                    try printer.printJSON(
                        Out(
                            entries: report.entries, tarBytes: report.tarBytes, sha256: report.fileDigests?.sha256,
                            size: report.fileDigests?.size))
                } else {
                    print("\(file): intact, \(report.entries) members, \(report.tarBytes) tar bytes")
                }
            }
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extract an archive into a folder, refusing members that would land outside it.")
        @Argument(help: "The archive.") var file: String
        @Option(help: "The folder to extract into (created if missing).") var to: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let report = try ArchiveInspector.extract(file, to: to)
                if output.json {
                    try printer.printJSON(report)
                } else {
                    print("extracted \(report.entries) members (\(formatBytes(report.bytes))) into \(to)")
                    for s in report.skipped { print("  skipped \(s)") }
                }
            }
        }
    }
}
