/// The kinds of source a server can back up. The raw value is the folder name in the store.
public enum SourceKind: String, CaseIterable, Codable, Sendable {
    case svn, git, trac, folder, sqlite

    /// Reads a kind folder name, including the legacy names (`repos`, `tracs`, `folders`).
    public init?(storeName: String) {
        switch storeName {
        case "repos": self = .svn
        case "tracs": self = .trac
        case "folders": self = .folder
        default: self.init(rawValue: storeName)
        }
    }
}

/// Names used as path components in the store: node, source.
public enum StoreName {
    /// Checks that `value` can be one folder name: letters, digits, `.`, `_`, `-`; not starting
    /// with `.`; at most 100 bytes; not `last`. `what` names the option in the error.
    public static func validate(_ value: String, what: String) throws {
        let allowed = value.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E
                || $0 == 0x5F || $0 == 0x2D
        }
        guard !value.isEmpty, value.utf8.count <= 100, allowed, !value.hasPrefix("."), value != "last" else {
            throw BackupError(
                .invalidArgument,
                "The \(what) '\(value)' cannot be used: use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.', and not 'last'."
            )
        }
    }
}
