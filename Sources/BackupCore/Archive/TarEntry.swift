/// One member of a tar archive, as read or to be written.
public struct TarEntry: Sendable, Equatable {
    /// What a member is.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo, volumeLabel
        /// A type flag this reader does not know; its data is skipped.
        case unknown(UInt8)

        /// The name the corpus manifest and `--json` use.
        public var description: String {
            switch self {
            case .file: "file"
            case .directory: "dir"
            case .symlink: "symlink"
            case .hardlink: "hardlink"
            case .characterDevice: "chardev"
            case .blockDevice: "blockdev"
            case .fifo: "fifo"
            case .volumeLabel: "volume-label"
            case .unknown: "unknown"
            }
        }
    }

    public var kind: Kind
    /// The member's path as stored (raw bytes; not always UTF-8).
    public var pathBytes: [UInt8]
    /// The symlink or hard-link target as stored.
    public var linkBytes: [UInt8]?
    /// The member's logical size (the expanded size of a sparse file).
    public var size: Int64
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var userName: String
    public var groupName: String
    /// Modification time, whole seconds since 1970 (UTC).
    public var modificationTime: Int64
    public var deviceMajor: Int64 = 0
    public var deviceMinor: Int64 = 0
    /// Offset of the member's first header block in the tar stream (reader only).
    public var headerOffset: Int64 = 0
    /// For a sparse member, the data extents in file order; nil for a contiguous file.
    public var sparseMap: [SparseExtent]?

    public init(
        kind: Kind, pathBytes: [UInt8], linkBytes: [UInt8]? = nil, size: Int64 = 0, mode: UInt32 = 0o644,
        uid: Int64 = 0, gid: Int64 = 0, userName: String = "", groupName: String = "", modificationTime: Int64 = 0
    ) {
        self.kind = kind
        self.pathBytes = pathBytes
        self.linkBytes = linkBytes
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.modificationTime = modificationTime
    }

    /// The path for display (invalid UTF-8 shown as U+FFFD).
    public var path: String { String(decoding: pathBytes, as: UTF8.self) }
    /// The link target for display.
    public var linkTarget: String? { linkBytes.map { String(decoding: $0, as: UTF8.self) } }
}

/// A run of stored bytes of a sparse file: `length` bytes at `offset` of the expanded file.
public struct SparseExtent: Sendable, Equatable {
    public var offset: Int64
    public var length: Int64
    public init(offset: Int64, length: Int64) {
        self.offset = offset
        self.length = length
    }
}
