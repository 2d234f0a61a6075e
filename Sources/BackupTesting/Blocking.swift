import Foundation

/// Runs blocking `body` on a thread of its own and waits for it without holding a thread of
/// Swift's cooperative pool, which is only as wide as the machine has cores (2 on CI). Tests
/// that drive processes, real tools or big files for seconds run their bodies this way, so
/// that tests running beside them in parallel (in-process HTTPS servers, long polls) keep the
/// pool.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// Runs async `body` with a thread of its own as its task executor (SE-0417), for tests that
/// mix awaits (HTTP requests, sleeps) with blocking calls (a CLI process, a port file): the
/// blocking calls then hold that thread, not one of the cooperative pool's. Child tasks of
/// `body` run there too; actors keep their own executors.
public func onThreadOfItsOwn<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    let executor = ThreadExecutor()
    defer { executor.finish() }
    return try await withTaskExecutorPreference(executor) { try await body() }
}

/// A task executor that runs its jobs, in order, on one thread it starts itself. After
/// ``finish()`` the thread ends once no job is queued; a job that still arrives (a
/// continuation resumed late) starts a thread again, so nothing is left unrun.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Safe: `jobs`, `finished` and `running` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false
    private var running = false

    public init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let start = !running
        running = true
        condition.signal()
        condition.unlock()
        if start {
            let thread = Thread { [self] in serve() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Lets the thread end when it has nothing left to run.
    public func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                running = false
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
