import Foundation

/// Makes a string a peer supplied safe to store, print or log: control characters (C0, DEL,
/// C1, and the Unicode line and bidirectional-override controls) become `\u{XX}` escapes, so
/// that no agent can forge a log line, move a terminal's cursor or reorder what a reader sees.
public enum AuditText {
    /// `text` with every control character escaped, and at most `limit` characters kept.
    public static func escape(_ text: String, limit: Int = 1024) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            if isControl(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }

    /// Whether `text` has a character that ``escape(_:limit:)`` would change.
    public static func needsEscaping(_ text: String) -> Bool {
        text.unicodeScalars.contains(where: isControl)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F: true
        default: false
        }
    }
}
