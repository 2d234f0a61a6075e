import Crypto

/// The digests of an artifact's bytes, as a DNA sidecar records them.
public struct ArtifactDigests: Equatable, Sendable, Codable {
    /// Number of bytes hashed.
    public var size: Int64
    /// SHA-256, lower-case hex; nil when only MD5 was computed.
    public var sha256: String?
    /// MD5, lower-case hex (kept for legacy sidecars); nil when only SHA-256 was computed.
    public var md5: String?

    public init(size: Int64, sha256: String?, md5: String?) {
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
    }
}

/// Which digests to compute: SHA-256 identifies new artifacts, MD5 only legacy ones.
public struct DigestSelection: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let sha256 = DigestSelection(rawValue: 1)
    public static let md5 = DigestSelection(rawValue: 2)
    public static let both: DigestSelection = [.sha256, .md5]
}

/// Computes SHA-256 and/or MD5 and the byte count of a stream in one pass.
public struct DigestAccumulator: Sendable {
    private var sha: SHA256?
    private var md5: Insecure.MD5?
    private(set) public var count: Int64 = 0

    public init(_ selection: DigestSelection = .both) {
        sha = selection.contains(.sha256) ? SHA256() : nil
        md5 = selection.contains(.md5) ? Insecure.MD5() : nil
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha?.update(bufferPointer: bytes)
        md5?.update(bufferPointer: bytes)
        count += Int64(bytes.count)
    }

    public func finalize() -> ArtifactDigests {
        ArtifactDigests(
            size: count,
            sha256: sha.map { hex($0.finalize()) },
            md5: md5.map { hex($0.finalize()) }
        )
    }
}

/// Lower-case hex of a digest.
func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
