import ArgumentParser
import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct DiskUsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Show the space artifacts take per source, and the store's free space."
    )

    @Option(help: "The store folder.")
    var store: String
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var origin: String
        var kind: String
        var source: String
        var artifacts: Int
        var bytes: Int64
        var newestStamp: String?
    }

    struct Report: Encodable {
        var sources: [Row]
        var totalBytes: Int64
        /// `.partial` files: received copies a transfer may resume, or what a crashed backup left
        /// (its agent removes them; see Protocol/store.md).
        var partials: Int
        var partialBytes: Int64
        var fileSystemBytes: Int64
        var fileSystemFreeBytes: Int64
    }

    func run() throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: store)
            let scan = try store.scan()
            let listing = try SourceListing.group(scan, store: store)
            let partialBytes = try scan.partials.reduce(Int64(0)) { sum, path in
                sum + (try FileSystem.linkStatus(path).map { Int64($0.st_size) } ?? 0)
            }
            var fs = statvfs()
            guard statvfs(store.root, &fs) == 0 else {
                throw BackupError(
                    .io, "Cannot read the free space of '\(store.root)': \(String(cString: strerror(errno))).")
            }
            let rows = listing.map {
                Row(
                    origin: $0.origin, kind: $0.kind, source: $0.source, artifacts: $0.artifacts.count,
                    bytes: $0.totalBytes,
                    newestStamp: $0.artifacts.map(\.stamp).max())
            }
            let report = Report(
                sources: rows, totalBytes: rows.reduce(0) { $0 + $1.bytes }, partials: scan.partials.count,
                partialBytes: partialBytes,
                fileSystemBytes: Int64(fs.f_blocks) * Int64(fs.f_frsize),
                fileSystemFreeBytes: Int64(fs.f_bavail) * Int64(fs.f_frsize))
            if output.json {
                try printer.printJSON(report)
                return
            }
            for r in rows {
                print(
                    "\(formatBytes(r.bytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(r.artifacts) artifacts  \(r.origin)/\(r.kind)/\(r.source)"
                )
            }
            if report.partials > 0 {
                print(
                    "\(formatBytes(report.partialBytes).padding(toLength: 11, withPad: " ", startingAt: 0)) \(report.partials) partials (transfers to resume, or left by a crash)"
                )
            }
            print(
                "\(formatBytes(report.totalBytes)) in all; \(formatBytes(report.fileSystemFreeBytes)) free of \(formatBytes(report.fileSystemBytes)) on the store's file system"
            )
        }
    }
}
