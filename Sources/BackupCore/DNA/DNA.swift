import Foundation

/// The identity of an artifact, kept in its `.dna` sidecar: size and digests of the
/// compressed bytes, and where, what and when it came from.
///
/// Format `scm-backup-dna/1` is JSON, specified in `Protocol/dna.md`. Readers also accept the
/// legacy one-line Python dict (`{'dig': '<md5>', 'size': 123L}`), which carries only MD5 and
/// size. Values are compared, never text.
public struct DNA: Codable, Equatable, Sendable {
    /// The format identifier this build writes.
    public static let currentFormat = "scm-backup-dna/1"

    public var format: String
    /// The artifact's file name (not its path: copies live under different roots).
    public var artifact: String
    public var size: Int64
    /// SHA-256 of the artifact's bytes, lower-case hex. Absent only in legacy sidecars.
    public var sha256: String?
    /// MD5 of the artifact's bytes, lower-case hex, for comparison with legacy sidecars.
    public var md5: String?
    /// The node the artifact was made on.
    public var origin: String?
    public var kind: String?
    public var source: String?
    public var revision: String?
    /// When the artifact was made on its origin, UTC.
    public var created: Date?
    /// Size of the tar stream before compression.
    public var tarSize: Int64?
    /// SHA-256 of the tar stream before compression (equal content gives an equal value).
    public var tarSHA256: String?
    /// Number of archive members.
    public var entries: Int?
    /// An identity of the source that must not change between backups (the svn UUID).
    public var identity: String?
    /// Why this artifact looks like a regression of its source (revision backwards, identity
    /// changed, size collapsed); absent when none. Retention never counts such an artifact.
    public var regressions: [String]?
    /// For an artifact taken together with another under one lock (a Trac environment and its
    /// svn repository), that artifact's file name.
    public var pairedWith: String?

    public init(
        artifact: String, digests: ArtifactDigests, origin: String, kind: String, source: String, revision: String,
        created: Date, tar: ArtifactDigests? = nil, entries: Int? = nil
    ) {
        format = DNA.currentFormat
        self.artifact = artifact
        size = digests.size
        sha256 = digests.sha256
        md5 = digests.md5
        self.origin = origin
        self.kind = kind
        self.source = source
        self.revision = revision
        self.created = created
        tarSize = tar?.size
        tarSHA256 = tar?.sha256
        self.entries = entries
    }

    /// True when the sidecar came from the legacy shell functions (MD5 and size only).
    public var isLegacy: Bool { format == DNA.legacyFormat }
    static let legacyFormat = "legacy-python-dict"

    /// The digests to compute to check an artifact against this DNA: SHA-256 when recorded,
    /// MD5 only where it is all a legacy sidecar has.
    public var digestsToCheck: DigestSelection { sha256 != nil ? .sha256 : .md5 }

    /// Compares recomputed digests with this DNA; returns the differences, empty when intact.
    public func mismatches(_ actual: ArtifactDigests) -> [String] {
        var out: [String] = []
        if actual.size != size { out.append("size \(actual.size) instead of \(size)") }
        if let sha256, let got = actual.sha256, got != sha256.lowercased() {
            out.append("sha256 \(got) instead of \(sha256)")
        } else if sha256 == nil, let md5, let got = actual.md5, got != md5.lowercased() {
            out.append("md5 \(got) instead of \(md5)")
        }
        return out
    }
}

extension DNA {
    /// The JSON bytes of a sidecar: sorted keys, ISO 8601 UTC times, newline at the end.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(self)) + [0x0A]
    }

    /// Parses a sidecar: JSON of a known format, or a legacy Python dict. `path` names the
    /// file in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> DNA {
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{'") || text.hasPrefix("{ '") || (text.hasPrefix("{") && !text.contains("\"")) {
            return try LegacyDNA.parse(text, path: path)
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        struct Header: Decodable { var format: String? }
        let header: Header
        do { header = try decoder.decode(Header.self, from: Data(bytes)) } catch {
            throw BackupError(
                .sidecarInvalid, "DNA sidecar '\(path)' is neither JSON nor a legacy dict: \(describe(error)).")
        }
        guard let format = header.format else {
            // A legacy dict written with double quotes is also valid JSON.
            if text.contains("\"dig\"") { return try LegacyDNA.parse(text, path: path) }
            throw BackupError(.sidecarInvalid, "DNA sidecar '\(path)' has no \"format\" field.")
        }
        guard format == currentFormat else {
            throw BackupError(
                .sidecarInvalid,
                "DNA sidecar '\(path)' has format '\(format)', which this version does not read (it reads '\(currentFormat)'). Upgrade scm-backup."
            )
        }
        let dna: DNA
        do { dna = try decoder.decode(DNA.self, from: Data(bytes)) } catch {
            throw BackupError(.sidecarInvalid, "DNA sidecar '\(path)' is malformed: \(describe(error)).")
        }
        guard dna.size >= 0 else { throw BackupError(.sidecarInvalid, "DNA sidecar '\(path)' has a negative size.") }
        guard let sha = dna.sha256, isHex(sha, length: 64) else {
            throw BackupError(.sidecarInvalid, "DNA sidecar '\(path)' has no valid \"sha256\" (64 hex digits).")
        }
        if let md5 = dna.md5, !isHex(md5, length: 32) {
            throw BackupError(.sidecarInvalid, "DNA sidecar '\(path)' has an invalid \"md5\" '\(md5)'.")
        }
        return dna
    }

    static func isHex(_ s: String, length: Int) -> Bool {
        s.utf8.count == length
            && s.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46)
            }
    }

    /// A decoding error as a short phrase naming the field at fault.
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? "" : "field \"\(p)\": "
        }
        switch error {
        case .keyNotFound(let key, _): return "field \"\(key.stringValue)\" is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return path(c) + c.debugDescription
        @unknown default: return "\(error)"
        }
    }
}
