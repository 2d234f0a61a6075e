@_exported import BackupFixtures
import Foundation

extension Command {
    /// Runs the `scm-backup` binary built beside the tests.
    public static func scmBackup(_ arguments: [String], in directory: String? = nil, input: String? = nil) throws
        -> CommandResult
    {
        // A fixed width, so that help output is the same in a terminal and in CI.
        try run(Paths.scmBackupBinary, arguments, in: directory, environment: ["COLUMNS": "100"], input: input)
    }
}

/// Where things are: the package, the shared corpora, the built binary.
public enum Paths {
    /// The package's root folder.
    public static let packageRoot: String = {
        // This file is <root>/Sources/BackupTesting/Command.swift.
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The tar conformance corpus: `$SCM_BACKUP_CORPORA/tar`, else `../shared/corpora/tar`
    /// beside the package.
    public static var tarCorpus: String {
        if let env = ProcessInfo.processInfo.environment["SCM_BACKUP_CORPORA"] { return env + "/tar" }
        return ((packageRoot + "/../shared/corpora/tar") as NSString).standardizingPath
    }

    /// The `Protocol/` folder of the package.
    public static var protocolFolder: String { packageRoot + "/Protocol" }

    /// The `scm-backup` executable of the current build.
    public static var scmBackupBinary: String {
        let optional: [String?] = [
            Bundle.main.executableURL?.deletingLastPathComponent().path,
            Bundle.main.bundleURL.path,
            Bundle.main.bundleURL.deletingLastPathComponent().path,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
        ]
        let candidates = optional.compactMap { $0 }
        for folder in candidates where FileManager.default.isExecutableFile(atPath: folder + "/scm-backup") {
            return folder + "/scm-backup"
        }
        return packageRoot + "/.build/debug/scm-backup"
    }
}
