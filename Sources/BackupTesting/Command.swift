import Foundation

/// The result of running a program.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs programs for tests: real `tar`, `gzip`, `svnadmin`, and our own binary.
public enum Command {
    /// Runs `executable` (a path, or a name looked up in PATH) with `arguments`.
    public static func run(
        _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
        input: String? = nil
    ) throws -> CommandResult {
        let process = Process()
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if executable.hasPrefix("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inPipe = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            try inPipe.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try inPipe.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

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
