import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Stops a piece of blocking work from outside: the agent cancels a task whose lease it lost,
/// and the work ends within seconds, cleaning up as for any failure (the `.partial` is removed,
/// the staging folder too).
///
/// The work runs on one thread, which installs its cancellation with ``run(_:)``; every tool
/// ``ToolRunner`` starts on that thread registers its process group here (Foundation's
/// `Process` makes each child the leader of a group of its own), and cancelling sends SIGTERM
/// to every registered group, then SIGKILL to those still there 5 seconds later, so that an
/// `svnadmin freeze` (and the `cat` it runs) never outlives its task. Long loops call
/// ``checkCurrent()`` between steps.
public final class WorkCancellation: @unchecked Sendable {
    // Safe: every mutable field is accessed with `lock` held.
    private let lock = NSLock()
    private var reason: String?
    private var groups: Set<pid_t> = []
    /// How long a group has between SIGTERM and SIGKILL. The default is 5 seconds.
    public let killAfter: Double

    public init(killAfter: Double = 5) {
        self.killAfter = killAfter
    }

    /// Why the work was cancelled, or nil while it was not.
    public var cancellationReason: String? {
        lock.lock()
        defer { lock.unlock() }
        return reason
    }

    /// Cancels the work: terminates every registered process group. Later calls do nothing.
    public func cancel(reason: String) {
        lock.lock()
        guard self.reason == nil else {
            lock.unlock()
            return
        }
        self.reason = reason
        let running = groups
        lock.unlock()
        for group in running { terminate(group) }
    }

    /// Notes a started tool's process group; a group started after the cancel is terminated at once.
    public func register(group: pid_t) {
        lock.lock()
        let cancelled = reason != nil
        if !cancelled { groups.insert(group) }
        lock.unlock()
        if cancelled { terminate(group) }
    }

    public func unregister(group: pid_t) {
        lock.lock()
        groups.remove(group)
        lock.unlock()
    }

    /// Throws when the work was cancelled.
    public func check() throws {
        if let reason = cancellationReason {
            throw BackupError(.cancelled, "The work was cancelled: \(reason).")
        }
    }

    private func terminate(_ group: pid_t) {
        // ESRCH (the group is gone already) is the good case; nothing to report.
        _ = kill(-group, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + killAfter) { [self] in
            lock.lock()
            let stillThere = groups.contains(group)
            lock.unlock()
            if stillThere { _ = kill(-group, SIGKILL) }
        }
    }

    // MARK: The current thread's cancellation

    private static let key = "scm-backup.work-cancellation"

    /// The cancellation installed on this thread by ``run(_:)``, if any.
    public static var current: WorkCancellation? {
        Thread.current.threadDictionary[key] as? WorkCancellation
    }

    /// Runs `body` on this thread with this cancellation installed.
    public func run<T>(_ body: () throws -> T) throws -> T {
        let previous = Thread.current.threadDictionary[Self.key]
        Thread.current.threadDictionary[Self.key] = self
        defer { Thread.current.threadDictionary[Self.key] = previous }
        return try body()
    }

    /// Throws when the current thread's work was cancelled.
    public static func checkCurrent() throws {
        try current?.check()
    }
}
