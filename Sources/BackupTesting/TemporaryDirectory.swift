import BackupCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh folder under the system temporary folder, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    /// Makes a new folder named after `label`.
    public init(_ label: String = "test") throws {
        var template = Array("\(NSTemporaryDirectory())/scm-backup-\(label).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw BackupError(.io, "Cannot create a temporary folder: \(String(cString: strerror(errno))).")
        }
        path = (String(cString: made) as NSString).standardizingPath
    }

    /// `path/relative`.
    public func file(_ relative: String) -> String { path + "/" + relative }

    /// Removes the folder and everything in it, making read-only folders writable first.
    public func remove() {
        _ = try? Process.run(URL(fileURLWithPath: "/bin/chmod"), arguments: ["-R", "u+rwx", path]).waitUntilExit()
        // Best effort: a leftover temporary folder is not worth failing a test for.
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a new temporary folder and removes it afterwards.
public func withTemporaryDirectory<T>(_ label: String = "test", _ body: (TemporaryDirectory) throws -> T) throws -> T {
    let dir = try TemporaryDirectory(label)
    defer { dir.remove() }
    return try body(dir)
}

/// Async variant of `withTemporaryDirectory`.
public func withTemporaryDirectory<T>(_ label: String = "test", _ body: (TemporaryDirectory) async throws -> T)
    async throws -> T
{
    let dir = try TemporaryDirectory(label)
    defer { dir.remove() }
    return try await body(dir)
}
