import Foundation

/// Sizes as the site file and the CLI write them.
public enum ByteSize {
    /// Bytes of "50GiB", "800 MiB", "64KiB", "1000" (no unit: bytes); nil when not a size.
    /// Human-readable: `512 B`, `1.5 KiB`, `12.0 MiB` (the CLI's, the mails' and the dashboard's).
    public static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func parse(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [
            ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1), ("", 1),
        ]
        for (unit, factor) in units where t.hasSuffix(unit) {
            guard let n = Double(t.dropLast(unit.count).trimmingCharacters(in: .whitespaces)), n >= 0,
                n * Double(factor) < 1e18
            else { continue }
            return Int64(n * Double(factor))
        }
        return nil
    }
}
