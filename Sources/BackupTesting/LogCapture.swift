import Foundation
import Logging

/// A logger whose lines a test can read: level, message and metadata (the logger's own merged
/// with the line's), in the order they were logged.
public final class LogCapture: Sendable {
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let box = LockedLines()

    public init() {}

    /// Every line logged so far.
    public var lines: [Line] { box.all }

    /// A logger that writes here, at `level` and above.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { _ in Handler(box: self.box) }
        logger.logLevel = level
        return logger
    }

    public var logger: Logger { logger() }

    struct Handler: LogHandler {
        let box: LockedLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { $1 } }
            box.append(
                Line(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

final class LockedLines: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var lines: [LogCapture.Line] = []
    func append(_ line: LogCapture.Line) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }
    var all: [LogCapture.Line] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
