import Foundation

/// The file at a store's root that says "this folder is a store, and which one", so that an
/// unmounted disk (an empty mount point) or the wrong disk is noticed instead of written into.
///
/// Format `scm-backup-store/1`, JSON; see `Protocol/store.md`.
public struct StoreMarker: Codable, Equatable, Sendable {
    public static let fileName = ".scm-backup-store"
    public static let currentFormat = "scm-backup-store/1"

    public var format: String
    /// A random id fixed when the store is first used; agents will check it against the site.
    public var id: String
    public var created: Date

    public init(id: String = UUID().uuidString.lowercased(), created: Date) {
        format = StoreMarker.currentFormat
        self.id = id
        self.created = created
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(self)) + [0x0A]
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> StoreMarker {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let marker: StoreMarker
        do { marker = try decoder.decode(StoreMarker.self, from: Data(bytes)) } catch {
            throw BackupError(
                .storeMarker, "Store marker '\(path)' is not valid JSON of format \(currentFormat): \(error).")
        }
        guard marker.format == currentFormat else {
            throw BackupError(
                .storeMarker, "Store marker '\(path)' has format '\(marker.format)', which this version does not read.")
        }
        return marker
    }
}
