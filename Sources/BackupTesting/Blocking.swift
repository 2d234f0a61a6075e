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
