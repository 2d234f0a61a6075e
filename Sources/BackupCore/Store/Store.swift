import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A folder of artifacts in the store layout (see `ArtifactLocation`), the same on origin
/// and backup nodes.
///
/// Read-only operations (`scan`, `verify`) work on any tree in the layout, legacy ones
/// included. Writing needs the store's marker file: a new or empty folder gets one on first
/// use; a non-empty folder without one is refused, since it is most likely an unmounted disk's
/// mount point or another tree, and must be adopted explicitly (`adopt`).
public struct Store: Sendable {
    /// The store's root folder.
    public let root: String

    /// A store for reading; nothing is checked or written.
    public init(root: String) {
        self.root = Store.normalise(root)
    }

    /// The marker file's path.
    public var markerPath: String { root + "/" + StoreMarker.fileName }

    /// Opens the store for writing: checks its marker, or writes one if the folder is new or
    /// empty. `expectedID`, when given, must match the marker's id.
    public static func openForWriting(_ root: String, expectedID: String? = nil, now: Date = Date()) throws -> Store {
        let store = Store(root: root)
        if let marker = try store.readMarker() {
            if let expectedID, marker.id != expectedID {
                throw BackupError(
                    .storeMarker,
                    "Store '\(store.root)' has id \(marker.id), not the expected \(expectedID): is the right disk mounted there?"
                )
            }
            return store
        }
        if let st = try FileSystem.linkStatus(store.root) {
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw BackupError(.storeMarker, "Store '\(store.root)' is not a folder.")
            }
            guard try FileSystem.entries(of: store.root).isEmpty else {
                throw BackupError(
                    .storeMarker,
                    "Store '\(store.root)' has no marker file \(StoreMarker.fileName) but is not empty: is the right disk mounted? If it is an existing store (a legacy one, say), adopt it with 'scm-backup init-store --store \(store.root)'."
                )
            }
        }
        try store.writeMarker(StoreMarker(created: now))
        return store
    }

    /// Opens a store that must already carry the marker with `id` (an agent's `store_id`):
    /// nothing is ever written here, so an unmounted disk's empty mount point or another disk is
    /// refused, naming the folder and both ids, instead of being adopted.
    public static func openExisting(_ root: String, id: String, configuredIn file: String) throws -> Store {
        let store = Store(root: root)
        guard let marker = try store.readMarker() else {
            throw BackupError(
                .storeMarker,
                "Store '\(store.root)' has no marker file \(StoreMarker.fileName): is its disk mounted? \(file) names store_id \(id); the agent never makes a marker itself (for a new store, run 'scm-backup init-store --store \(store.root)' and put the id it prints into store_id)."
            )
        }
        guard marker.id == id else {
            throw BackupError(
                .storeMarker,
                "Store '\(store.root)' has id \(marker.id), not store_id \(id) of \(file): is the right disk mounted there?"
            )
        }
        return store
    }

    /// Writes a marker into an existing folder (adopting a legacy tree); returns the marker,
    /// the existing one if there is one.
    @discardableResult
    public func adopt(now: Date = Date()) throws -> StoreMarker {
        if let marker = try readMarker() {
            try ensureLedger()
            return marker
        }
        let marker = StoreMarker(created: now)
        try writeMarker(marker)
        return marker
    }

    /// The marker, or nil if there is none.
    public func readMarker() throws -> StoreMarker? {
        guard try FileSystem.linkStatus(markerPath) != nil else { return nil }
        return try StoreMarker.decode(try FileSystem.readSmallFile(markerPath), path: markerPath)
    }

    private func writeMarker(_ marker: StoreMarker) throws {
        try FileSystem.makeDirectories(root)
        try FileSystem.writeAtomically(try marker.encoded(), to: markerPath)
        try ensureLedger()
    }

    /// The absolute path of a location in this store.
    public func path(of location: ArtifactLocation) -> String { root + "/" + location.relativePath }

    static func normalise(_ path: String) -> String {
        var p = path
        if !p.hasPrefix("/") { p = FileManager.default.currentDirectoryPath + "/" + p }
        p = (p as NSString).standardizingPath
        return p
    }
}
