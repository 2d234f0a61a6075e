#if canImport(Glibc)
    import Glibc
#endif

/// Gives the heap's free pages back to the system.
///
/// glibc keeps what a long-running process frees in its arenas (one per thread that
/// allocated, up to 8 per core), and only the top of each is ever returned on its own. With
/// the churn of requests, leases and reports spread over the NIO and dispatch threads, a
/// coordinator or agent kept growing in RSS by tens of kilobytes a cycle while its live heap
/// stayed at a few megabytes (measured with heaptrack over `ops/soak.sh`); `malloc_trim`
/// releases every free page of every arena. Long-lived services call ``trim()`` after their
/// periodic work (the lease sweep, a task); it costs a walk of the free lists, a millisecond.
public enum HeapTrim {
    /// Returns free heap pages to the system; a no-op where the C library has no such call.
    public static func trim() {
        // The result says only whether any memory was released; either is fine.
        _ = mallocTrim?(0)
    }

    /// Whether this C library has `malloc_trim` (glibc does).
    public static var isAvailable: Bool { mallocTrim != nil }

    /// glibc's `malloc_trim`, looked up once: `<malloc.h>` is not part of the Glibc module.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
            return nil
        #endif
    }()
}
