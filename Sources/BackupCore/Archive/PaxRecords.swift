/// The records of a pax extended header (`x` or `g`), in the order they appear.
struct PaxRecords {
    var records: [(key: String, value: [UInt8])] = []

    /// Parses "<length> <key>=<value>\n" records; any malformed record is an error.
    init(parsing data: [UInt8]) throws(PaxError) {
        var i = 0
        while i < data.count {
            // Trailing NUL padding after the last record is tolerated.
            if data[i...].allSatisfy({ $0 == 0 }) { break }
            var j = i
            var length = 0
            while j < data.count, data[j] >= 0x30, data[j] <= 0x39 {
                length = length * 10 + Int(data[j] - 0x30)
                guard length <= data.count else { throw PaxError("a record length exceeds the header") }
                j += 1
            }
            guard j > i, j < data.count, data[j] == 0x20 else { throw PaxError("a record has no valid length") }
            guard length > j - i + 1, i + length <= data.count else {
                throw PaxError("a record length of \(length) does not fit the header")
            }
            let end = i + length
            guard data[end - 1] == 0x0A else { throw PaxError("a record is missing its newline") }
            let body = data[(j + 1)..<(end - 1)]
            guard let eq = body.firstIndex(of: 0x3D) else { throw PaxError("a record has no '='") }
            let key = String(decoding: body[body.startIndex..<eq], as: UTF8.self)
            guard !key.isEmpty else { throw PaxError("a record has an empty key") }
            records.append((key, Array(body[(eq + 1)...])))
            i = end
        }
    }

    init() {}

    /// The last value of `key`, if any.
    subscript(key: String) -> [UInt8]? {
        records.last(where: { $0.key == key })?.value
    }

    /// Adds `other`'s records after these, so that they take precedence.
    mutating func merge(_ other: PaxRecords) {
        records += other.records
    }

    /// Encodes records as a pax header's data.
    static func encode(_ records: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in records {
            let body = Array(" \(key)=".utf8) + value + [0x0A]
            // The length counts its own digits: grow until it is consistent.
            var length = body.count + 1
            while String(length).utf8.count + body.count != length { length = String(length).utf8.count + body.count }
            out += Array(String(length).utf8) + body
        }
        return out
    }
}

/// Why a pax header was refused.
struct PaxError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

extension PaxRecords {
    /// A decimal integer value (optionally negative); nil if malformed or out of range.
    static func integer(_ value: [UInt8]) -> Int64? {
        guard !value.isEmpty, value.count <= 19 else { return nil }
        var digits = value[...]
        var negative = false
        if digits.first == 0x2D {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let magnitude = Int64(String(decoding: digits, as: UTF8.self))
        return negative ? magnitude.map { -$0 } : magnitude
    }

    /// Whole seconds of a pax time such as "1350244992.023960108" or "-1.5".
    static func seconds(_ value: [UInt8]) -> Int64? {
        let parts = value.split(separator: 0x2E, maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = integer(Array(parts[0])) else { return nil }
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            // Floor toward the past, as a negative time with a fraction lies before `whole`.
            if whole < 0 || (value.first == 0x2D), parts[1].contains(where: { $0 != 0x30 }) { return whole - 1 }
        }
        return whole
    }
}
