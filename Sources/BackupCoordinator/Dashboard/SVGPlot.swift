import Foundation

/// Text for HTML and SVG: `& < > " '` escaped, and control characters other than tab and
/// newline (an agent's or a repository's bytes may hold ESC, NUL or CR) shown as U+FFFD.
public enum HTMLText {
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Control characters (CR, LF, ESC, …) as U+FFFD, for values that mustache escapes itself.
    public static func clean(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { s in
                    s.value < 0x20 && s != "\t" || (0x7F...0x9F).contains(s.value) ? "\u{FFFD}" : s
                }))
    }
}

/// A line plot as inline SVG, drawn by our code (no script, no external file): time on x,
/// values on y, one polyline per series with its points as circles carrying a `<title>`.
/// Every label is escaped with ``HTMLText/escape(_:)``.
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(at: Date, value: Double)]
        /// A dashed line (a projection).
        public var dashed = false
        public init(name: String, points: [(at: Date, value: Double)], dashed: Bool = false) {
            self.name = name
            self.points = points
            self.dashed = dashed
        }
    }

    public var title: String
    public var series: [Series]
    /// How a y value reads (bytes, counts).
    public var format: @Sendable (Double) -> String
    public var width = 720.0
    public var height = 240.0
    /// Points per series drawn at most: longer series are thinned evenly.
    public static let maxPoints = 400

    public init(title: String, series: [Series], format: @escaping @Sendable (Double) -> String) {
        self.title = title
        self.series = series
        self.format = format
    }

    public func render() -> String {
        let left = 80.0
        let right = 12.0
        let top = 24.0
        let bottom = 36.0
        let all = series.flatMap(\.points)
        var svg =
            "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTMLText.escape(title))\">"
        svg += "<title>\(HTMLText.escape(title))</title>"
        guard let first = all.min(by: { $0.at < $1.at }), let last = all.max(by: { $0.at < $1.at }) else {
            return svg
                + "<text class=\"empty\" x=\"\(Int(width / 2))\" y=\"\(Int(height / 2))\">no data yet</text></svg>"
        }
        let t0 = first.at.timeIntervalSince1970
        let t1 = max(last.at.timeIntervalSince1970, t0 + 1)
        let lo = min(0, all.map(\.value).min() ?? 0)
        let hi = max(all.map(\.value).max() ?? 1, lo + 1)
        let plotW = width - left - right
        let plotH = height - top - bottom
        func x(_ d: Date) -> Double { left + (d.timeIntervalSince1970 - t0) / (t1 - t0) * plotW }
        func y(_ v: Double) -> Double { top + plotH - (v - lo) / (hi - lo) * plotH }
        func n(_ v: Double) -> String { String(format: "%.1f", v) }
        // Axes and four horizontal grid lines with their values.
        svg += "<g class=\"axes\">"
        for i in 0...4 {
            let v = lo + (hi - lo) * Double(i) / 4
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(y(v)))\" x2=\"\(n(width - right))\" y2=\"\(n(y(v)))\"/>"
            svg +=
                "<text class=\"ylabel\" x=\"\(n(left - 6))\" y=\"\(n(y(v) + 4))\">\(HTMLText.escape(format(v)))</text>"
        }
        svg += "<text class=\"xlabel\" x=\"\(n(left))\" y=\"\(n(height - 12))\">\(Self.day(first.at))</text>"
        svg +=
            "<text class=\"xlabel end\" x=\"\(n(width - right))\" y=\"\(n(height - 12))\">\(Self.day(last.at))</text>"
        svg += "</g>"
        for (index, s) in series.enumerated() where !s.points.isEmpty {
            let points = Self.thin(s.points.sorted { $0.at < $1.at })
            let path = points.map { "\(n(x($0.at))),\(n(y($0.value)))" }.joined(separator: " ")
            svg +=
                "<g class=\"series s\(index % 6)\(s.dashed ? " dashed" : "")\"><polyline points=\"\(path)\"/>"
            if !s.dashed {
                for p in points {
                    svg +=
                        "<circle cx=\"\(n(x(p.at)))\" cy=\"\(n(y(p.value)))\" r=\"2\"><title>\(HTMLText.escape(s.name)) \(Self.day(p.at)): \(HTMLText.escape(format(p.value)))</title></circle>"
                }
            }
            svg +=
                "<text class=\"legend\" x=\"\(n(left + 8 + Double(index) * 160))\" y=\"14\">\(HTMLText.escape(s.name))</text></g>"
        }
        return svg + "</svg>"
    }

    static func thin(_ points: [(at: Date, value: Double)]) -> [(at: Date, value: Double)] {
        guard points.count > maxPoints else { return points }
        let step = Double(points.count - 1) / Double(maxPoints - 1)
        return (0..<maxPoints).map { points[Int((Double($0) * step).rounded())] }
    }

    /// `2026-12-05 16:00` in UTC.
    static func day(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min))
    }
}
