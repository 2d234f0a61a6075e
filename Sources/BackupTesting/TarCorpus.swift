import Foundation

/// The tar conformance corpus (`shared/corpora/tar`) and its manifest of expected results.
public struct TarCorpus: Sendable {
    public struct Archive: Decodable, Sendable, CustomTestStringConvertibleShim {
        public var file: String
        public var expect: String
        public var divergent: Bool?
        public var list_only: Bool?
        public var entries: [Entry]?
        public var note: String
        public var testDescription: String { file }
    }

    public struct Entry: Decodable, Sendable {
        public var name: String
        public var name_hex: String?
        public var type: String
        public var size: Int64
        public var linkname: String?
        public var header_linkname: String?
        public var md5: String?
    }

    struct Manifest: Decodable {
        var archives: [Archive]
    }

    public let folder: String
    public let archives: [Archive]

    /// Loads the manifest; fails with a clear message when the corpus is not beside the package.
    public static func load() throws -> TarCorpus {
        let folder = Paths.tarCorpus
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: folder + "/MANIFEST.json"))
        } catch {
            throw CorpusMissing(folder: folder)
        }
        return TarCorpus(folder: folder, archives: try JSONDecoder().decode(Manifest.self, from: data).archives)
    }

    /// The manifest's archives, or none when it cannot be read (the test that loads it reports why).
    public static var archivesForArguments: [Archive] {
        // A missing corpus is reported by `TarCorpusManifestTests`, which calls `load()` directly.
        (try? load().archives) ?? []
    }

    public struct CorpusMissing: Error, CustomStringConvertible {
        public var folder: String
        public var description: String {
            "The tar corpus manifest '\(folder)/MANIFEST.json' is missing: the tests expect the shared corpora beside the package (or SCM_BACKUP_CORPORA)."
        }
    }
}

/// Lets parameterised tests show an archive by its file name.
public protocol CustomTestStringConvertibleShim {
    var testDescription: String { get }
}
