/// Applies pax records (global, then local) to a member: path, link, size, owner, time and
/// the GNU sparse 0.0/0.1 maps and names.
extension TarReader {
    func apply(_ records: PaxRecords, to entry: inout TarEntry, dataSize: inout Int64, headerOnly: Bool) throws {
        guard !records.records.isEmpty else { return }
        func number(_ key: String) throws -> Int64? {
            guard let raw = records[key] else { return nil }
            guard let v = PaxRecords.integer(raw), v >= 0 else {
                throw corrupt(
                    "the pax record \(key)=\(String(decoding: raw.prefix(40), as: UTF8.self)) of '\(entry.path)' is not a valid number",
                    at: entry.headerOffset)
            }
            return v
        }
        if let path = records["path"] {
            guard !path.contains(0) else {
                throw BackupError(
                    .hostileEntry,
                    "'\(source.name)': the pax path of the member at byte \(entry.headerOffset) contains a NUL byte.")
            }
            entry.pathBytes = path
        }
        if let link = records["linkpath"] {
            guard !link.contains(0) else {
                throw BackupError(
                    .hostileEntry, "'\(source.name)': the pax link path of '\(entry.path)' contains a NUL byte.")
            }
            entry.linkBytes = link.isEmpty ? nil : link
        }
        if let size = try number("size") {
            if !headerOnly {
                dataSize = size
                entry.size = size
            }
        }
        if let uid = try number("uid") { entry.uid = uid }
        if let gid = try number("gid") { entry.gid = gid }
        if let u = records["uname"] { entry.userName = String(decoding: u, as: UTF8.self) }
        if let g = records["gname"] { entry.groupName = String(decoding: g, as: UTF8.self) }
        if let m = records["mtime"] {
            guard let seconds = PaxRecords.seconds(m) else {
                throw corrupt("the pax mtime of '\(entry.path)' is not a valid time", at: entry.headerOffset)
            }
            entry.modificationTime = seconds
        }
        // GNU sparse formats 0.0 and 0.1 (1.0 keeps its map in the data).
        let major = records["GNU.sparse.major"].flatMap(PaxRecords.integer)
        if let name = records["GNU.sparse.name"] { entry.pathBytes = name }
        if let real = try number("GNU.sparse.realsize") ?? number("GNU.sparse.size") {
            entry.size = real
        }
        if major == nil || major == 0 {
            if let map = records["GNU.sparse.map"] {
                let numbers = try map.split(separator: 0x2C, omittingEmptySubsequences: false).map { part -> Int64 in
                    guard let v = PaxRecords.integer(Array(part)), v >= 0 else {
                        throw corrupt("the GNU.sparse.map of '\(entry.path)' is malformed", at: entry.headerOffset)
                    }
                    return v
                }
                guard numbers.count % 2 == 0, numbers.count / 2 <= TarReader.maxSparseExtents else {
                    throw corrupt("the GNU.sparse.map of '\(entry.path)' is malformed", at: entry.headerOffset)
                }
                entry.sparseMap = stride(from: 0, to: numbers.count, by: 2).map {
                    SparseExtent(offset: numbers[$0], length: numbers[$0 + 1])
                }
            } else if records["GNU.sparse.offset"] != nil {
                let offsets = records.records.filter { $0.key == "GNU.sparse.offset" }
                let lengths = records.records.filter { $0.key == "GNU.sparse.numbytes" }
                guard offsets.count == lengths.count else {
                    throw corrupt(
                        "the GNU sparse 0.0 records of '\(entry.path)' do not pair up", at: entry.headerOffset)
                }
                entry.sparseMap = try zip(offsets, lengths).map { o, l in
                    guard let off = PaxRecords.integer(o.value), let len = PaxRecords.integer(l.value), off >= 0,
                        len >= 0
                    else {
                        throw corrupt("a GNU sparse 0.0 record of '\(entry.path)' is malformed", at: entry.headerOffset)
                    }
                    return SparseExtent(offset: off, length: len)
                }
            }
        }
    }
}
