import Foundation

/// An error a person can act on: a stable `code`, a message naming the object at fault and,
/// where known, the remedy, and the underlying cause.
///
/// `code` doubles as the wire error code and the metric label, so codes are never renamed.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    /// A small, extensible set of error codes.
    ///
    /// A literal converts to a code so that tests can compare with the wire's spelling; product
    /// code names the registered constants (``ErrorCodes``).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }

        /// A source path that does not exist or is not what its kind needs.
        public static let sourceInvalid = Code(rawValue: "source-invalid")
        /// A file vanished, shrank, grew or changed while it was being archived.
        public static let sourceChanged = Code(rawValue: "source-changed")
        /// A read, write, open or sync call failed.
        public static let io = Code(rawValue: "io")
        /// The file system is full (ENOSPC or EDQUOT).
        public static let diskFull = Code(rawValue: "disk-full")
        /// An archive is damaged: bad checksum, malformed header, corrupt compressed data.
        public static let archiveCorrupt = Code(rawValue: "archive-corrupt")
        /// An archive ends before its data does.
        public static let archiveTruncated = Code(rawValue: "archive-truncated")
        /// An archive entry would write outside the extraction target.
        public static let hostileEntry = Code(rawValue: "hostile-entry")
        /// A DNA sidecar cannot be read or parsed.
        public static let sidecarInvalid = Code(rawValue: "sidecar-invalid")
        /// A store folder lacks its marker file or carries another store's id.
        public static let storeMarker = Code(rawValue: "store-marker")
        /// A value given by the user is out of range or malformed.
        public static let invalidArgument = Code(rawValue: "invalid-argument")
        /// A required external tool (svnadmin, git, trac-admin, sqlite3) is missing.
        public static let toolMissing = Code(rawValue: "tool-missing")
        /// An external tool exited with an error.
        public static let toolFailed = Code(rawValue: "tool-failed")
        /// A backup was refused or flagged because the source went backwards.
        public static let regression = Code(rawValue: "regression")
        /// An operation would overwrite or delete something it must not.
        public static let refused = Code(rawValue: "refused")
        /// A configuration file is malformed or names an unknown key or an impossible value.
        public static let configInvalid = Code(rawValue: "config-invalid")
        /// An artifact was not found.
        public static let notFound = Code(rawValue: "not-found")
        /// The work was cancelled from outside (its lease was lost, the agent is stopping).
        public static let cancelled = Code(rawValue: "cancelled")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}

extension BackupError {
    /// The error for a failed system call on `path`, mapping ENOSPC/EDQUOT to `.diskFull`.
    public static func posix(_ operation: String, path: String, errno code: Int32) -> BackupError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT:
            return BackupError(
                .diskFull,
                "Cannot \(operation) '\(path)': the file system is full (\(reason)). Free space or use another store."
            )
        case ENOENT:
            return BackupError(.notFound, "Cannot \(operation) '\(path)': no such file or directory.")
        default:
            return BackupError(.io, "Cannot \(operation) '\(path)': \(reason).")
        }
    }
}
