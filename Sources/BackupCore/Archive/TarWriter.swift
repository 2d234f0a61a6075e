/// Encodes tar headers: POSIX ustar, with a pax extended header for whatever ustar cannot
/// hold (long paths and link targets, sizes of 8 GiB and more, large ids, long owner names,
/// times before 1970).
///
/// The encoding is a pure function of the entry, so the same tree gives the same bytes.
enum TarHeaderEncoder {
    /// The header blocks (pax header and its data if needed, then the ustar header) of `entry`.
    static func encode(_ entry: TarEntry) -> [UInt8] {
        var pax: [(String, [UInt8])] = []
        var block = [UInt8](repeating: 0, count: TarFormat.blockSize)

        let path = entry.pathBytes
        if path.count <= 100 {
            _ = TarFormat.putString(path, into: &block, TarFormat.name)
        } else if let split = splitForPrefix(path) {
            _ = TarFormat.putString(Array(path[(split + 1)...]), into: &block, TarFormat.name)
            _ = TarFormat.putString(Array(path[..<split]), into: &block, TarFormat.prefix)
        } else {
            pax.append(("path", path))
            _ = TarFormat.putString(Array(path.prefix(100)), into: &block, TarFormat.name)
        }
        if let link = entry.linkBytes {
            if !TarFormat.putString(link, into: &block, TarFormat.linkname) {
                pax.append(("linkpath", link))
                _ = TarFormat.putString(Array(link.prefix(100)), into: &block, TarFormat.linkname)
            }
        }
        _ = TarFormat.putOctal(Int64(entry.mode & 0o7777), into: &block, TarFormat.mode)
        if !TarFormat.putOctal(entry.uid, into: &block, TarFormat.uid) {
            pax.append(("uid", Array(String(entry.uid).utf8)))
            _ = TarFormat.putOctal(0, into: &block, TarFormat.uid)
        }
        if !TarFormat.putOctal(entry.gid, into: &block, TarFormat.gid) {
            pax.append(("gid", Array(String(entry.gid).utf8)))
            _ = TarFormat.putOctal(0, into: &block, TarFormat.gid)
        }
        let dataSize = entry.kind == .file ? entry.size : 0
        if !TarFormat.putOctal(dataSize, into: &block, TarFormat.size) {
            pax.append(("size", Array(String(dataSize).utf8)))
            _ = TarFormat.putOctal(0, into: &block, TarFormat.size)
        }
        if !TarFormat.putOctal(entry.modificationTime, into: &block, TarFormat.mtime) {
            pax.append(("mtime", Array(String(entry.modificationTime).utf8)))
            _ = TarFormat.putOctal(0, into: &block, TarFormat.mtime)
        }
        block[TarFormat.typeflag] = typeflag(entry.kind)
        _ = TarFormat.putString(Array("ustar\0".utf8), into: &block, TarFormat.magic)
        _ = TarFormat.putString(Array("00".utf8), into: &block, TarFormat.version)
        for (value, field, key) in [
            (entry.userName, TarFormat.uname, "uname"), (entry.groupName, TarFormat.gname, "gname"),
        ] where !TarFormat.putString(Array(value.utf8), into: &block, field) {
            pax.append((key, Array(value.utf8)))
        }
        if entry.kind == .characterDevice || entry.kind == .blockDevice {
            _ = TarFormat.putOctal(entry.deviceMajor, into: &block, TarFormat.devmajor)
            _ = TarFormat.putOctal(entry.deviceMinor, into: &block, TarFormat.devminor)
        }
        sealChecksum(&block)

        guard !pax.isEmpty else { return block }
        let data = PaxRecords.encode(pax)
        var header = [UInt8](repeating: 0, count: TarFormat.blockSize)
        let base = path.split(separator: 0x2F).last.map(Array.init) ?? []
        _ = TarFormat.putString(Array("PaxHeaders/".utf8) + Array(base.prefix(89)), into: &header, TarFormat.name)
        _ = TarFormat.putOctal(0o644, into: &header, TarFormat.mode)
        _ = TarFormat.putOctal(0, into: &header, TarFormat.uid)
        _ = TarFormat.putOctal(0, into: &header, TarFormat.gid)
        _ = TarFormat.putOctal(Int64(data.count), into: &header, TarFormat.size)
        _ = TarFormat.putOctal(max(0, min(entry.modificationTime, 0o77777777777)), into: &header, TarFormat.mtime)
        header[TarFormat.typeflag] = UInt8(ascii: "x")
        _ = TarFormat.putString(Array("ustar\0".utf8), into: &header, TarFormat.magic)
        _ = TarFormat.putString(Array("00".utf8), into: &header, TarFormat.version)
        sealChecksum(&header)
        return header + data + padding(for: Int64(data.count)) + block
    }

    /// The zero bytes that round `size` up to a whole block.
    static func padding(for size: Int64) -> [UInt8] {
        let rest = Int(size % Int64(TarFormat.blockSize))
        return rest == 0 ? [] : [UInt8](repeating: 0, count: TarFormat.blockSize - rest)
    }

    /// The end-of-archive marker: two zero blocks.
    static let endOfArchive = [UInt8](repeating: 0, count: 2 * TarFormat.blockSize)

    /// Where to split a long path into ustar prefix (≤155) and name (≤100), if anywhere.
    private static func splitForPrefix(_ path: [UInt8]) -> Int? {
        guard path.count <= 256 else { return nil }
        // Directories end in "/": a split needs a name part that is not empty.
        for i in stride(from: min(155, path.count - 2), through: 1, by: -1) where path[i] == 0x2F {
            if path.count - i - 1 <= 100 { return i }
            return nil
        }
        return nil
    }

    private static func typeflag(_ kind: TarEntry.Kind) -> UInt8 {
        switch kind {
        case .file: UInt8(ascii: "0")
        case .hardlink: UInt8(ascii: "1")
        case .symlink: UInt8(ascii: "2")
        case .characterDevice: UInt8(ascii: "3")
        case .blockDevice: UInt8(ascii: "4")
        case .directory: UInt8(ascii: "5")
        case .fifo: UInt8(ascii: "6")
        case .volumeLabel: UInt8(ascii: "V")
        case .unknown(let flag): flag
        }
    }

    private static func sealChecksum(_ block: inout [UInt8]) {
        let sum = TarFormat.checksums(block).unsigned
        var digits = Array(String(sum, radix: 8).utf8)
        digits = [UInt8](repeating: 0x30, count: max(0, 6 - digits.count)) + digits
        block.replaceSubrange(TarFormat.checksum, with: digits + [0, 0x20])
    }
}
