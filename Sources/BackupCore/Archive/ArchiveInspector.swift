/// Reads whole archives: list members, read through everything (the legacy `tar ztvf >
/// /dev/null` check, plus the gzip CRC), extract.
public enum ArchiveInspector {
    /// What a full read-through of an archive found.
    public struct CheckReport: Sendable, Equatable {
        public var entries: Int
        /// Bytes of the tar stream read.
        public var tarBytes: Int64
        /// Digests of the file's raw bytes, when asked for.
        public var fileDigests: ArtifactDigests?
    }

    /// The members of the archive at `path` (`.tar` or `.tar.gz`), in order.
    public static func list(_ path: String) throws -> [TarEntry] {
        let source = try ArchiveFileSource(path: path)
        let reader = TarReader(source: source)
        var entries: [TarEntry] = []
        while let entry = try reader.next() { entries.append(entry) }
        return entries
    }

    /// Reads every member's data and the compressed stream to its end. Throws at the first
    /// damage, naming the member and offset; `digests` also hashes the file's raw bytes.
    public static func check(
        _ path: String, digests: DigestSelection? = nil, visit: ((TarEntry) -> Void)? = nil
    ) throws -> CheckReport {
        let source = try ArchiveFileSource(path: path, digests: digests)
        let reader = TarReader(source: source)
        var count = 0
        while let entry = try reader.next() {
            visit?(entry)
            try reader.readData { _, _ in }
            count += 1
        }
        let position = reader.position
        let fileDigests = try source.finish()
        return CheckReport(entries: count, tarBytes: position, fileDigests: fileDigests)
    }

    /// Extracts the archive at `path` into `target` (see `TarExtractor` for the safety rules).
    public static func extract(_ path: String, to target: String) throws -> ExtractReport {
        let source = try ArchiveFileSource(path: path)
        let extractor = try TarExtractor(target: target)
        let report = try extractor.extract(from: TarReader(source: source))
        _ = try source.finish()
        return report
    }
}
