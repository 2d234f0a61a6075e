#if canImport(Glibc)
    import Glibc
#endif

/// C library functions the Glibc module does not import (`<malloc.h>`, variadic `prctl`,
/// glibc extensions), looked up by name in the running process.
enum CLibrary {
    /// The function `name` as `type` (a `@convention(c)` function type), or nil where this C
    /// library has none.
    static func function<T>(_ name: String, as type: T.Type) -> T? {
        #if canImport(Glibc)
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
            return unsafeBitCast(symbol, to: type)
        #else
            return nil
        #endif
    }
}
