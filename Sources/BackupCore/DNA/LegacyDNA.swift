/// Reads the legacy sidecar: a Python dict literal such as
/// `{'dig': '7b87e78cc03ea544e2ad3abae46eecd1', 'size': 1915051630L}`.
///
/// Keys may come in any order, quotes may be single or double, integers may carry Python 2's
/// `L` suffix; unknown keys are ignored. The values, not the text, are what is compared (the
/// legacy textual diff failed on the `L`).
enum LegacyDNA {
    static func parse(_ text: String, path: String) throws -> DNA {
        func fail(_ why: String) -> BackupError {
            BackupError(
                .sidecarInvalid, "Legacy DNA sidecar '\(path)' cannot be read: \(why). It holds: \(text.prefix(120))")
        }
        var chars = Substring(text)
        func skipSpace() { chars = chars.drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) }
        func expect(_ c: Character) throws {
            skipSpace()
            guard chars.first == c else { throw fail("expected '\(c)'") }
            chars = chars.dropFirst()
        }
        func string() throws -> String {
            skipSpace()
            guard let q = chars.first, q == "'" || q == "\"" else { throw fail("expected a quoted string") }
            chars = chars.dropFirst()
            guard let close = chars.firstIndex(of: q) else { throw fail("a string is not closed") }
            let s = String(chars[..<close])
            chars = chars[chars.index(after: close)...]
            return s
        }
        func value() throws -> String {
            skipSpace()
            if chars.first == "'" || chars.first == "\"" { return try string() }
            let token = chars.prefix(while: { $0 != "," && $0 != "}" && $0 != " " })
            chars = chars.dropFirst(token.count)
            guard !token.isEmpty else { throw fail("a value is missing") }
            return String(token)
        }
        try expect("{")
        var fields: [String: String] = [:]
        skipSpace()
        if chars.first != "}" {
            while true {
                let key = try string()
                try expect(":")
                fields[key] = try value()
                skipSpace()
                if chars.first == "," {
                    chars = chars.dropFirst()
                    skipSpace()
                    if chars.first == "}" { break }
                    continue
                }
                break
            }
        }
        try expect("}")
        skipSpace()
        guard chars.isEmpty else { throw fail("text follows the closing brace") }
        guard let dig = fields["dig"] else { throw fail("the 'dig' key is missing") }
        guard DNA.isHex(dig, length: 32) else { throw fail("'dig' is not an MD5 of 32 hex digits") }
        guard var sizeText = fields["size"] else { throw fail("the 'size' key is missing") }
        if sizeText.hasSuffix("L") || sizeText.hasSuffix("l") { sizeText.removeLast() }
        guard let size = Int64(sizeText), size >= 0 else { throw fail("'size' is not a whole number") }
        var dna = DNA(
            artifact: "", digests: ArtifactDigests(size: size, sha256: nil, md5: dig.lowercased()),
            origin: "", kind: "", source: "", revision: "", created: .init(timeIntervalSince1970: 0))
        dna.format = DNA.legacyFormat
        dna.origin = nil
        dna.kind = nil
        dna.source = nil
        dna.revision = nil
        dna.created = nil
        return dna
    }
}
