import Foundation

/// A value behind a lock, for the few pieces of state shared across threads: request
/// handlers, a transfer's progress, process-wide settings made once at start.
public final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // Safe: `value` is only read or written while `lock` is held.
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
