/// Gives the heap's free pages back to the system.
///
/// glibc keeps what a long-running process frees in its arenas (one per thread that
/// allocated, up to 8 per core), and only the top of each is ever returned on its own. With
/// the churn of requests, leases and reports spread over the NIO and dispatch threads, a
/// coordinator or agent kept growing in RSS by tens of kilobytes a cycle while its live heap
/// stayed at a few megabytes (measured with heaptrack over `ops/soak.sh`); `malloc_trim`
/// releases every free page of every arena. Long-lived services call ``trim()`` after their
/// periodic work (the lease sweep, a task); it costs a walk of the free lists, a millisecond.
/// Pages that hold a few live blocks cannot be returned, so fewer arenas (``limitArenas(_:)``)
/// keep the live blocks together.
public enum HeapTrim {
    /// Returns free heap pages to the system; a no-op where the C library has no such call.
    public static func trim() {
        // The result says only whether any memory was released; either is fine.
        _ = mallocTrim?(0)
    }

    /// Lets glibc keep at most `count` arenas (`M_ARENA_MAX`) instead of up to eight per core:
    /// with every thread's frees spread over arenas of their own, a long-running service's few
    /// megabytes of live heap held tens of megabytes of pages that no trim could return (a
    /// 550-cycle soak: 3 MB in use over 12 arenas of 2 MB each). Called first thing in `main`,
    /// before the services start their threads.
    public static func limitArenas(_ count: Int32 = 2) {
        // The result says only whether glibc took the setting; without it, nothing changes.
        _ = mallopt?(mArenaMax, count)
    }

    /// `M_ARENA_MAX` of `<malloc.h>`.
    private static let mArenaMax: Int32 = -8

    private static let mallopt = CLibrary.function("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self)

    /// Whether this C library has `malloc_trim` and `mallopt` (glibc does).
    public static var isAvailable: Bool { mallocTrim != nil && mallopt != nil }

    /// glibc's `malloc_trim`, looked up once: `<malloc.h>` is not part of the Glibc module.
    private static let mallocTrim = CLibrary.function("malloc_trim", as: (@convention(c) (Int) -> Int32).self)
}
