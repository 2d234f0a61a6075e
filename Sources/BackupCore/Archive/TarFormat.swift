/// Field layout and number encodings of the tar header block (POSIX ustar, with the GNU
/// and star variants a reader meets).
enum TarFormat {
    static let blockSize = 512

    // Offsets and lengths of the ustar header fields.
    static let name = 0..<100
    static let mode = 100..<108
    static let uid = 108..<116
    static let gid = 116..<124
    static let size = 124..<136
    static let mtime = 136..<148
    static let checksum = 148..<156
    static let typeflag = 156
    static let linkname = 157..<257
    static let magic = 257..<263
    static let version = 263..<265
    static let uname = 265..<297
    static let gname = 297..<329
    static let devmajor = 329..<337
    static let devminor = 337..<345
    static let prefix = 345..<500
    /// The star format's prefix is shorter: atime and ctime follow it.
    static let starPrefix = 345..<476
    static let starTrailer = 508..<512

    // Old GNU sparse header fields.
    static let gnuSparse = 386  // 4 entries of offset[12] + numbytes[12]
    static let gnuIsExtended = 482
    static let gnuRealSize = 483..<495

    /// The bytes of a field up to its first NUL.
    static func string(_ block: ArraySlice<UInt8>) -> [UInt8] {
        if let nul = block.firstIndex(of: 0) { return Array(block[block.startIndex..<nul]) }
        return Array(block)
    }

    /// Parses a numeric field: octal (spaces and NULs around it allowed) or GNU base-256.
    /// Returns nil for anything else, including an empty field where `allowEmpty` is false.
    static func number(_ field: ArraySlice<UInt8>, allowEmpty: Bool = true) -> Int64? {
        guard let first = field.first else { return allowEmpty ? 0 : nil }
        if first & 0x80 != 0 {
            // Base-256, two's complement, big-endian; bit 7 of the first byte is the marker and
            // bit 6 the sign.
            let invert: UInt8 = first & 0x40 != 0 ? 0xFF : 0
            var value: UInt64 = 0
            for (i, byte) in field.enumerated() {
                var c = byte ^ invert
                if i == 0 { c &= 0x7F }
                guard value >> 56 == 0 else { return nil }
                value = value << 8 | UInt64(c)
            }
            guard value >> 63 == 0 else { return nil }
            return invert == 0xFF ? ~Int64(value) : Int64(value)
        }
        var i = field.startIndex
        while i < field.endIndex && (field[i] == 0x20 || field[i] == 0) { i += 1 }
        var end = i
        while end < field.endIndex && field[end] >= 0x30 && field[end] <= 0x37 { end += 1 }
        // Only spaces and NULs may follow the digits.
        guard field[end...].allSatisfy({ $0 == 0x20 || $0 == 0 }) else { return nil }
        if end == i { return allowEmpty ? 0 : nil }
        var value: Int64 = 0
        for d in field[i..<end] {
            guard value <= (Int64.max >> 3) else { return nil }
            value = value * 8 + Int64(d - 0x30)
        }
        return value
    }

    /// The unsigned and signed sums of a header with its checksum field taken as spaces.
    static func checksums(_ block: [UInt8]) -> (unsigned: Int64, signed: Int64) {
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (i, b) in block.enumerated() {
            let v: UInt8 = checksum.contains(i) ? 0x20 : b
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        return (unsigned, signed)
    }

    /// Writes `value` as zero-padded octal with a trailing NUL into `field`; false if it does
    /// not fit.
    static func putOctal(_ value: Int64, into block: inout [UInt8], _ field: Range<Int>) -> Bool {
        let digits = field.count - 1
        guard value >= 0 else { return false }
        var octal = Array(String(value, radix: 8).utf8)
        guard octal.count <= digits else { return false }
        octal = [UInt8](repeating: 0x30, count: digits - octal.count) + octal
        block.replaceSubrange(field.lowerBound..<(field.lowerBound + digits), with: octal)
        block[field.upperBound - 1] = 0
        return true
    }

    /// Copies `bytes` into `field`, NUL-padded; false if they do not fit.
    static func putString(_ bytes: [UInt8], into block: inout [UInt8], _ field: Range<Int>) -> Bool {
        guard bytes.count <= field.count else { return false }
        block.replaceSubrange(field.lowerBound..<(field.lowerBound + bytes.count), with: bytes)
        return true
    }
}
