/// GNU sparse maps: the old-GNU header entries and extension blocks, and the format 1.0 map
/// at the start of a member's data (0.0 and 0.1 come in pax records, see `TarReader+Pax`).
extension TarReader {
    func readOldGNUSparseMap(_ block: [UInt8], entry: TarEntry) throws -> [SparseExtent] {
        var map: [SparseExtent] = []
        func parse(_ block: [UInt8], base: Int, count: Int) throws -> Bool {
            for i in 0..<count {
                let o = base + i * 24
                if block[o] == 0 { return false }
                guard let off = TarFormat.number(block[o..<(o + 12)]),
                    let len = TarFormat.number(block[(o + 12)..<(o + 24)]),
                    off >= 0, len >= 0
                else {
                    throw corrupt("an old GNU sparse entry of '\(entry.path)' is malformed", at: entry.headerOffset)
                }
                map.append(SparseExtent(offset: off, length: len))
            }
            return true
        }
        _ = try parse(block, base: TarFormat.gnuSparse, count: 4)
        var extended = block[TarFormat.gnuIsExtended] != 0
        while extended {
            guard map.count <= TarReader.maxSparseExtents else {
                throw corrupt(
                    "'\(entry.path)' has more than \(TarReader.maxSparseExtents) sparse extents", at: entry.headerOffset
                )
            }
            guard let ext = try readBlock(context: "an old GNU sparse header") else {
                throw truncated("the archive ends inside the sparse headers of '\(entry.path)'")
            }
            _ = try parse(ext, base: 0, count: 21)
            extended = ext[504] != 0
        }
        return map
    }

    /// GNU sparse 1.0 keeps its map at the start of the member's data as decimal lines.
    func readSparseMapIfVersion1(records: PaxRecords) throws {
        guard var entry = current, records["GNU.sparse.major"].flatMap(PaxRecords.integer) == 1 else { return }
        var consumed: Int64 = 0
        var pending: [UInt8] = []
        func nextNumber() throws -> Int64 {
            while true {
                if let nl = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<nl])
                    pending.removeFirst(nl + 1)
                    guard let v = PaxRecords.integer(line), v >= 0 else {
                        throw corrupt("the GNU sparse 1.0 map of '\(entry.path)' is malformed", at: entry.headerOffset)
                    }
                    return v
                }
                guard consumed < Int64(TarReader.maxExtendedHeaderSize), remaining >= Int64(TarFormat.blockSize) else {
                    throw corrupt(
                        "the GNU sparse 1.0 map of '\(entry.path)' is malformed or too large", at: entry.headerOffset)
                }
                guard let block = try readBlock(context: "a GNU sparse 1.0 map") else {
                    throw truncated("the archive ends inside the sparse map of '\(entry.path)'")
                }
                remaining -= Int64(TarFormat.blockSize)
                consumed += Int64(TarFormat.blockSize)
                pending += block
            }
        }
        let count = try nextNumber()
        guard count <= Int64(TarReader.maxSparseExtents) else {
            throw corrupt("'\(entry.path)' declares \(count) sparse extents", at: entry.headerOffset)
        }
        var map: [SparseExtent] = []
        for _ in 0..<count {
            let off = try nextNumber()
            let len = try nextNumber()
            map.append(SparseExtent(offset: off, length: len))
        }
        entry.sparseMap = map
        current = entry
    }

    func validate(_ map: [SparseExtent], of entry: TarEntry) throws {
        var last: Int64 = 0
        var stored: Int64 = 0
        for e in map {
            let (endOffset, overflow) = e.offset.addingReportingOverflow(e.length)
            guard !overflow, e.offset >= last, endOffset <= entry.size else {
                throw corrupt(
                    "the sparse map of '\(entry.path)' has overlapping or out-of-range extents", at: entry.headerOffset)
            }
            last = endOffset
            stored += e.length
        }
        guard stored == remaining else {
            throw corrupt(
                "the sparse map of '\(entry.path)' covers \(stored) bytes but \(remaining) are stored",
                at: entry.headerOffset)
        }
    }
}
