/// Reads tar members one by one from a byte stream: POSIX ustar and pax, GNU (long names,
/// base-256 numbers, sparse files in all four encodings, dumpdirs, volume labels), star and v7.
///
/// The reader never allocates what a header claims: extended headers are capped at
/// `maxExtendedHeaderSize` and data is streamed. Every error names the archive, the member and
/// the byte offset in the tar stream where reading failed.
public final class TarReader {
    /// The largest pax, long-name or sparse-map header the reader accepts. The default is 1 MiB.
    public static let maxExtendedHeaderSize = 1 << 20
    /// The most sparse extents one member may have.
    static let maxSparseExtents = 1_000_000

    let source: ByteSource
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var sourceEnded = false
    /// Bytes of the tar stream consumed so far.
    private(set) public var position: Int64 = 0
    private var globalRecords = PaxRecords()
    /// Stored data bytes of the current member not yet consumed, and its block padding.
    var remaining: Int64 = 0
    private var padding: Int64 = 0
    var current: TarEntry?
    private var ended = false
    private var entriesRead = 0

    public init(source: ByteSource, bufferSize: Int = 256 * 1024) {
        self.source = source
        buffer = [UInt8](repeating: 0, count: max(bufferSize, 4 * TarFormat.blockSize))
    }

    /// The next member, or nil after the end-of-archive marker (or a clean end of stream).
    /// Unread data of the previous member is skipped.
    public func next() throws -> TarEntry? {
        guard !ended else { return nil }
        try skipRest()
        current = nil
        var local = PaxRecords()
        var hasLocal = false
        var longName: [UInt8]?
        var longLink: [UInt8]?
        var firstHeader: Int64?
        while true {
            let headerOffset = position
            guard let block = try readBlock(context: "a header") else {
                if entriesRead == 0 && firstHeader == nil {
                    throw BackupError(
                        .archiveCorrupt, "'\(source.name)' is empty: it does not look like a tar archive.")
                }
                if firstHeader != nil {
                    throw truncated("the archive ends after an extended header, before its member")
                }
                ended = true
                return nil
            }
            if block.allSatisfy({ $0 == 0 }) {
                if firstHeader != nil {
                    throw corrupt("an extended header is followed by the end-of-archive marker", at: headerOffset)
                }
                ended = true
                return nil
            }
            try checkChecksum(block, at: headerOffset)
            if firstHeader == nil { firstHeader = headerOffset }
            guard let size = TarFormat.number(block[TarFormat.size]), size >= 0 else {
                throw corrupt(
                    "the size field of a header is not a valid number", at: headerOffset)
            }
            let flag = block[TarFormat.typeflag]
            switch flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let data = try readExtended(size: size, what: "pax header")
                let records: PaxRecords
                do { records = try PaxRecords(parsing: data) } catch {
                    throw corrupt("malformed pax header: \(error.reason)", at: headerOffset)
                }
                if flag == UInt8(ascii: "g") {
                    globalRecords.merge(records)
                    if firstHeader == headerOffset { firstHeader = nil }
                } else {
                    local.merge(records)
                    hasLocal = true
                }
                continue
            case UInt8(ascii: "L"):
                longName = TarFormat.string(try readExtended(size: size, what: "GNU long name")[...])
                continue
            case UInt8(ascii: "K"):
                longLink = TarFormat.string(try readExtended(size: size, what: "GNU long link")[...])
                continue
            default:
                break
            }
            var entry = try decodeHeader(block, flag: flag, size: size, at: firstHeader ?? headerOffset)
            if let longName { entry.pathBytes = longName }
            if let longLink { entry.linkBytes = longLink }
            var records = globalRecords
            if hasLocal { records.merge(local) }
            let headerOnly = TarReader.headerOnlyFlags.contains(flag)
            var dataSize = headerOnly ? 0 : size
            try apply(records, to: &entry, dataSize: &dataSize, headerOnly: headerOnly)
            if flag == UInt8(ascii: "S") {
                entry.sparseMap = try readOldGNUSparseMap(block, entry: entry)
                guard let real = TarFormat.number(block[TarFormat.gnuRealSize]), real >= 0 else {
                    throw corrupt(
                        "the sparse real size of '\(entry.path)' is not a valid number", at: entry.headerOffset)
                }
                entry.size = real
            }
            remaining = dataSize
            let blockSize = Int64(TarFormat.blockSize)
            padding = (blockSize - dataSize % blockSize) % blockSize
            current = entry
            try readSparseMapIfVersion1(records: records)
            if let map = current?.sparseMap { try validate(map, of: current!) }
            entriesRead += 1
            return current
        }
    }

    /// Streams the current member's data to `body` as (offset in the expanded file, bytes).
    /// For a sparse member the holes are not passed; offsets jump over them.
    public func readData(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        guard let entry = current else { return }
        if let map = entry.sparseMap {
            for extent in map {
                try stream(count: extent.length, startingAt: extent.offset, entry: entry, body)
            }
        } else {
            try stream(count: remaining, startingAt: 0, entry: entry, body)
        }
        guard remaining == 0 else {
            throw corrupt("'\(entry.path)' stores \(remaining) bytes more than its sparse map covers", at: position)
        }
        try skipRest()
    }

    // MARK: - Blocks and bytes

    private func fill(_ wanted: Int) throws {
        if start > 0 && buffer.count - start < wanted {
            buffer.withUnsafeMutableBytes { b in
                b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: end - start)
            }
            end -= start
            start = 0
        }
        while end - start < wanted && !sourceEnded {
            let n = try withSourceContext {
                try buffer.withUnsafeMutableBytes {
                    try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[end...]))
                }
            }
            if n == 0 { sourceEnded = true } else { end += n }
        }
    }

    /// One 512-byte block, nil at a clean end of stream; a partial block is a truncation.
    func readBlock(context: String) throws -> [UInt8]? {
        try fill(TarFormat.blockSize)
        if end == start { return nil }
        guard end - start >= TarFormat.blockSize else {
            throw truncated("the archive ends inside \(context) (\(end - start) of 512 bytes)")
        }
        let block = Array(buffer[start..<(start + TarFormat.blockSize)])
        start += TarFormat.blockSize
        position += Int64(TarFormat.blockSize)
        return block
    }

    private func stream(
        count: Int64, startingAt offset: Int64, entry: TarEntry, _ body: (Int64, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var left = count
        var at = offset
        while left > 0 {
            if start == end { try fill(1) }
            guard end > start else {
                throw truncated("'\(entry.path)' is cut short: \(remaining) bytes of its data are missing")
            }
            let n = Int(min(Int64(end - start), left))
            try buffer.withUnsafeBytes { try body(at, UnsafeRawBufferPointer(rebasing: $0[start..<(start + n)])) }
            start += n
            position += Int64(n)
            remaining -= Int64(n)
            left -= Int64(n)
            at += Int64(n)
        }
    }

    private func skip(_ count: Int64, what: String) throws {
        var left = count
        while left > 0 {
            if start == end { try fill(1) }
            guard end > start else { throw truncated("the archive ends inside \(what) (\(left) bytes missing)") }
            let n = Int(min(Int64(end - start), left))
            start += n
            position += Int64(n)
            left -= Int64(n)
        }
    }

    private func skipRest() throws {
        let name = current?.path ?? "?"
        if remaining > 0 { try skip(remaining, what: "the data of '\(name)'") }
        remaining = 0
        if padding > 0 { try skip(padding, what: "the padding after '\(name)'") }
        padding = 0
    }

    private func readExtended(size: Int64, what: String) throws -> [UInt8] {
        guard size <= Int64(TarReader.maxExtendedHeaderSize) else {
            throw corrupt(
                "a \(what) declares \(size) bytes, more than the \(TarReader.maxExtendedHeaderSize)-byte limit",
                at: position - Int64(TarFormat.blockSize))
        }
        var data: [UInt8] = []
        data.reserveCapacity(Int(size))
        var left = Int(size)
        while left > 0 {
            if start == end { try fill(1) }
            guard end > start else { throw truncated("the archive ends inside a \(what)") }
            let n = min(end - start, left)
            data += buffer[start..<(start + n)]
            start += n
            position += Int64(n)
            left -= n
        }
        let pad = (TarFormat.blockSize - Int(size) % TarFormat.blockSize) % TarFormat.blockSize
        try skip(Int64(pad), what: "the padding of a \(what)")
        return data
    }

    // MARK: - Headers

    private func checkChecksum(_ block: [UInt8], at offset: Int64) throws {
        let stored = TarFormat.number(block[TarFormat.checksum], allowEmpty: false)
        let (unsigned, signed) = TarFormat.checksums(block)
        guard let stored, stored == unsigned || stored == signed else {
            if offset == 0 {
                throw BackupError(
                    .archiveCorrupt,
                    "'\(source.name)' does not look like a tar archive: its first header fails its checksum.")
            }
            throw corrupt("a header fails its checksum", at: offset)
        }
    }

    private func decodeHeader(_ block: [UInt8], flag: UInt8, size: Int64, at offset: Int64) throws -> TarEntry {
        let magic = Array(block[TarFormat.magic])
        let version = Array(block[TarFormat.version])
        let isPOSIX = magic == Array("ustar\0".utf8) && version == Array("00".utf8)
        let isGNU = magic == Array("ustar ".utf8) && version == [0x20, 0]
        var path = TarFormat.string(block[TarFormat.name])
        if isPOSIX {
            let isStar = Array(block[TarFormat.starTrailer]) == Array("tar\0".utf8)
            let prefix = TarFormat.string(block[isStar ? TarFormat.starPrefix : TarFormat.prefix])
            if !prefix.isEmpty { path = prefix + [0x2F] + path }
        }
        func field(_ range: Range<Int>, _ label: String) throws -> Int64 {
            guard let v = TarFormat.number(block[range]) else {
                throw corrupt(
                    "the \(label) field of '\(String(decoding: path, as: UTF8.self))' is not a valid number", at: offset
                )
            }
            return v
        }
        let kind: TarEntry.Kind
        switch flag {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"), UInt8(ascii: "S"): kind = .file
        case UInt8(ascii: "1"): kind = .hardlink
        case UInt8(ascii: "2"): kind = .symlink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"), UInt8(ascii: "D"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "V"): kind = .volumeLabel
        default: kind = .unknown(flag)
        }
        let link = TarFormat.string(block[TarFormat.linkname])
        var entry = TarEntry(
            kind: kind, pathBytes: path, linkBytes: link.isEmpty ? nil : link,
            size: (flag == UInt8(ascii: "1") || flag == UInt8(ascii: "2")) ? 0 : size,
            mode: UInt32(truncatingIfNeeded: try field(TarFormat.mode, "mode") & 0o7777),
            uid: try field(TarFormat.uid, "uid"), gid: try field(TarFormat.gid, "gid"),
            userName: (isPOSIX || isGNU)
                ? String(decoding: TarFormat.string(block[TarFormat.uname]), as: UTF8.self) : "",
            groupName: (isPOSIX || isGNU)
                ? String(decoding: TarFormat.string(block[TarFormat.gname]), as: UTF8.self) : "",
            modificationTime: try field(TarFormat.mtime, "mtime"))
        if kind == .characterDevice || kind == .blockDevice {
            entry.deviceMajor = try field(TarFormat.devmajor, "devmajor")
            entry.deviceMinor = try field(TarFormat.devminor, "devminor")
            entry.size = 0
        }
        if kind == .fifo { entry.size = 0 }
        entry.headerOffset = offset
        return entry
    }

    /// Type flags whose members carry no data, whatever their size field says (POSIX leaves
    /// it meaningless for links, devices, FIFOs and directories; GNU dumpdirs `D` do carry data).
    static let headerOnlyFlags: Set<UInt8> = Set("123456".utf8)

    // MARK: - Errors

    private func withSourceContext<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch var error as BackupError {
            if let name = current?.path {
                error.message += " (while reading '\(name)', tar byte \(position))"
            }
            throw error
        }
    }

    func corrupt(_ reason: String, at offset: Int64) -> BackupError {
        BackupError(.archiveCorrupt, "'\(source.name)' is damaged: \(reason) (tar byte \(offset)).")
    }

    func truncated(_ reason: String) -> BackupError {
        BackupError(
            .archiveTruncated, "'\(source.name)' is truncated: \(reason) at tar byte \(position + Int64(end - start)).")
    }
}
