import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A long-running program started by a test (a coordinator, an agent), stopped by `stop()`.
public final class BackgroundProcess: @unchecked Sendable {
    // Safe: the Process is only started in init and signalled or waited on afterwards, which
    // Foundation's Process allows from any thread.
    private let process = Process()
    public let logPath: String

    /// Starts `executable` with `arguments`; its output goes to `logPath`.
    public init(_ executable: String, _ arguments: [String], log logPath: String) throws {
        self.logPath = logPath
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logPath])
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` (SIGTERM by default) and waits for the exit; returns the exit status.
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What the program printed so far (empty if its log cannot be read: it is only shown in
    /// failure messages).
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Waits until `path` exists and holds text (e.g. a port file), up to `seconds`.
    public static func waitForFile(_ path: String, seconds: Double = 30) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            // Not there yet (or half-written) is the normal case while polling.
            if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty {
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            usleep(50_000)
        }
        throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
    }
}
