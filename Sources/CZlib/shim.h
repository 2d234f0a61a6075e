#include <zlib.h>

/// deflateInit2 and inflateInit2 are macros; Swift cannot call them, so wrap them.
static inline int czlib_deflate_init_gzip(z_streamp strm, int level) {
    /* windowBits 15 + 16: write a gzip wrapper with a zero mtime and no name. */
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int czlib_inflate_init_gzip(z_streamp strm) {
    /* windowBits 15 + 16: accept only a gzip wrapper. */
    return inflateInit2(strm, 15 + 16);
}
