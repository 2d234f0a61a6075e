import Foundation

/// Where an artifact lives in the store layout:
/// `<origin>/<kind>/<source>/YYYY/MM/DD/HHMMSS/<source>-<revision>.tar.gz`, stamps in UTC.
public struct ArtifactLocation: Hashable, Sendable, Codable {
    public var origin: String
    /// The kind folder as stored (`svn`, or a legacy name such as `repos`).
    public var kind: String
    public var source: String
    /// `YYYY/MM/DD/HHMMSS`, UTC.
    public var stamp: String
    /// The artifact's file name.
    public var fileName: String

    public init(origin: String, kind: String, source: String, stamp: String, fileName: String) {
        self.origin = origin
        self.kind = kind
        self.source = source
        self.stamp = stamp
        self.fileName = fileName
    }

    /// The path relative to the store root.
    public var relativePath: String { "\(origin)/\(kind)/\(source)/\(stamp)/\(fileName)" }
    /// The source's folder relative to the store root (where `last` lives).
    public var sourceFolder: String { "\(origin)/\(kind)/\(source)" }

    /// The revision from `<source>-<revision>.tar.gz`, nil for names without one.
    public var revision: String? {
        let base = fileName.hasSuffix(".tar.gz") ? String(fileName.dropLast(7)) : fileName
        guard base.hasPrefix(source + "-") else { return nil }
        let rev = String(base.dropFirst(source.count + 1))
        return rev.isEmpty ? nil : rev
    }

    /// The moment the stamp names, UTC.
    public var stampDate: Date? { ArtifactLocation.date(fromStamp: stamp) }

    /// Parses the components of a path relative to the store root; nil if it is not in the layout.
    public init?(relativeComponents c: [String]) {
        guard c.count == 8, c[7].hasSuffix(".tar.gz"),
            c[3].count == 4, c[4].count == 2, c[5].count == 2, c[6].count == 6,
            (c[3] + c[4] + c[5] + c[6]).allSatisfy(\.isASCIIDigit)
        else { return nil }
        self.init(origin: c[0], kind: c[1], source: c[2], stamp: c[3..<7].joined(separator: "/"), fileName: c[7])
        guard stampDate != nil else { return nil }
    }

    /// `YYYY/MM/DD/HHMMSS` of `date` in UTC.
    public static func stamp(for date: Date) -> String {
        let c = utcCalendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d/%02d/%02d/%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// `date` as `YYYYMMDDTHHMMSSZ` (UTC, ISO 8601 basic form, as the trash's batches): the name
    /// of a hub snapshot, which sorts by time.
    public static func basicStamp(for date: Date) -> String {
        let plain = stamp(for: date).replacingOccurrences(of: "/", with: "")
        return "\(plain.prefix(8))T\(plain.suffix(6))Z"
    }

    /// The date a stamp names, or nil if it is not a valid stamp.
    public static func date(fromStamp stamp: String) -> Date? {
        let p = stamp.split(separator: "/")
        guard p.count == 4, p[3].count == 6, let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]),
            let hh = Int(p[3].prefix(2)), let mm = Int(p[3].dropFirst(2).prefix(2)), let ss = Int(p[3].suffix(2))
        else { return nil }
        let comps = DateComponents(year: y, month: m, day: d, hour: hh, minute: mm, second: ss)
        guard comps.isValidDate(in: utcCalendar) else { return nil }
        return utcCalendar.date(from: comps)
    }

    static let utcCalendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
