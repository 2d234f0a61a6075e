import Foundation

/// How to run one external tool (`svnadmin`, `git`, `trac-admin`, `sqlite3`): its path and
/// extra environment. The defaults find the tool on `PATH`.
public struct Tool: Sendable, Equatable, Codable {
    /// The program: a name looked up on `PATH`, or an absolute path.
    public var program: String
    /// Variables added to the environment, e.g. `LD_LIBRARY_PATH` for a site's own sqlite.
    public var environment: [String: String]

    public init(_ program: String, environment: [String: String] = [:]) {
        self.program = program
        self.environment = environment
    }
}

/// What a tool printed.
public struct ToolOutput: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: String
    public var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs external tools, turning a missing program or a failure into an error that names the
/// tool, its arguments, the exit status and the end of what it printed on standard error.
public enum ToolRunner {
    /// Runs `tool` with `arguments`; throws unless it exits with 0 (or `allowFailure`).
    @discardableResult
    public static func run(
        _ tool: Tool, _ arguments: [String], in directory: String? = nil, input: [UInt8]? = nil,
        allowFailure: Bool = false, discardOutput: Bool = false
    ) throws -> ToolOutput {
        let process = Process()
        let resolved = try resolve(tool.program)
        let (executable, argv) = ParentDeath.command(resolved, arguments)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = argv
        process.environment = ProcessInfo.processInfo.environment.merging(tool.environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = discardOutput ? FileHandle.nullDevice : out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        let cancellation = WorkCancellation.current
        try cancellation?.check()
        do { try process.run() } catch {
            throw BackupError(.toolMissing, "Cannot start '\(resolved)': \(error).", cause: error)
        }
        cancellation?.register(group: process.processIdentifier)
        defer { cancellation?.unregister(group: process.processIdentifier) }
        // Drain both pipes concurrently so a chatty tool never blocks on a full pipe.
        let collector = PipeCollector(err.fileHandleForReading)
        if let input {
            try inPipe.fileHandleForWriting.write(contentsOf: Data(input))
            try inPipe.fileHandleForWriting.close()
        }
        let stdout = discardOutput ? Data() : out.fileHandleForReading.readDataToEndOfFile()
        let stderr = collector.wait()
        process.waitUntilExit()
        let result = ToolOutput(
            status: process.terminationStatus, stdout: Array(stdout), stderr: String(decoding: stderr, as: UTF8.self))
        try cancellation?.check()
        if result.status != 0 && !allowFailure {
            let tail = result.stderr.split(separator: "\n").suffix(5).joined(separator: " / ")
            throw BackupError(
                .toolFailed,
                "'\(([tool.program] + arguments).joined(separator: " "))' failed with exit status \(result.status): \(tail.isEmpty ? "no message" : tail)"
            )
        }
        return result
    }

    /// Starts `tool`, waits until it prints `readyLine`, runs `body` while it keeps running,
    /// then closes its standard input and checks that it exits with 0.
    ///
    /// This holds a lock that a tool takes for as long as its child runs, e.g.
    /// `svnadmin freeze REPO -- sh -c 'echo frozen; exec cat'`: the repository stays frozen
    /// while `body` copies it.
    public static func whileRunning<T>(
        _ tool: Tool, _ arguments: [String], readyLine: String, _ body: () throws -> T
    ) throws -> T {
        let process = Process()
        let (executable, argv) = ParentDeath.command(try resolve(tool.program), arguments)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = argv
        process.environment = ProcessInfo.processInfo.environment.merging(tool.environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        let shown = ([tool.program] + arguments).joined(separator: " ")
        let cancellation = WorkCancellation.current
        try cancellation?.check()
        do { try process.run() } catch {
            throw BackupError(.toolMissing, "Cannot start '\(shown)': \(error).", cause: error)
        }
        cancellation?.register(group: process.processIdentifier)
        defer { cancellation?.unregister(group: process.processIdentifier) }
        let collector = PipeCollector(err.fileHandleForReading)
        func stop() -> (Int32, String) {
            // Closing our end ends `cat`, which ends the tool; a close error changes nothing here.
            try? input.fileHandleForWriting.close()
            let stderr = collector.wait()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: stderr, as: UTF8.self))
        }
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains(readyLine) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty {
                let (status, stderr) = stop()
                try cancellation?.check()
                throw BackupError(
                    .toolFailed,
                    "'\(shown)' ended (status \(status)) before it was ready: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
                )
            }
            seen += chunk
        }
        let result: T
        do { result = try body() } catch {
            _ = stop()
            throw error
        }
        let (status, stderr) = stop()
        try cancellation?.check()
        guard status == 0 else {
            throw BackupError(
                .toolFailed,
                "'\(shown)' failed with exit status \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        return result
    }

    /// The absolute path of `program`, searching `PATH` for a bare name.
    public static func resolve(_ program: String) throws -> String {
        if program.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw BackupError(.toolMissing, "The tool '\(program)' does not exist or is not executable.")
            }
            return program
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw BackupError(
            .toolMissing,
            "The tool '\(program)' is not on PATH. Install it (ops/setup.sh installs subversion, git, sqlite3 and Trac) or configure its path for the source."
        )
    }
}

/// Reads a pipe to its end on a background thread.
private final class PipeCollector: @unchecked Sendable {
    // Safe: `data` is written once on the reader thread before `done` is signalled and read only
    // after `wait()` has seen that signal.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
