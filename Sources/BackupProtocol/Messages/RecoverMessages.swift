import BackupCore
import Foundation

/// `POST /v1/recoveries` (admin, `scm-backup recover --node`): restore a source on node `node`
/// from a copy the site holds. The coordinator picks the artifact (at `at`, else the newest
/// one without regressions that has a good copy) and the copy (on `from`, else the most
/// recently verified intact one), and queues one `recover` task on `node`, whose agent refuses
/// any target outside its own `recovery_roots` before a byte moves. See `Protocol/transfer.md`.
public struct RecoverRequest: Codable, Sendable, Equatable {
    /// The source's name, as the site configuration and the catalog know it.
    public var source: String
    /// The node whose source it is, when sources of several nodes have that name.
    public var origin: String?
    /// The source's kind, when a Trac environment and an svn repository share the name.
    public var kind: SourceKind?
    /// The node to restore on (its agent does the work).
    public var node: String
    /// Where the source goes on `node`: an absolute path.
    public var to: String
    /// The node whose copy is read; the default is the most recently verified intact copy.
    public var from: String?
    /// The artifact's stamp, `YYYY/MM/DD/HHMMSS` or `YYYYMMDDHHMMSS`.
    public var at: String?
    /// Move an existing target aside (`<target>.before-recover-<stamp>`) instead of refusing.
    public var force: Bool?
    /// `USER:GROUP` to own the restored files.
    public var owner: String?
    /// For a Trac environment with an `svn_source`: where its repository goes; the default is
    /// the path the site configuration gives that repository.
    public var svnTo: String?
    /// For a `folder` source, step 1: the admin CLI's one-time X25519 public key (raw, base64).
    /// The task changes nothing: it compares the backup's files with the live ones and seals
    /// the comparison (``FolderPreview``) to this key; see ``SealedPreview``.
    public var previewKey: String?
    /// With ``previewKey``: leave credential-looking lines of the diffs unmasked.
    public var showSecrets: Bool?
    /// For a `folder` source, step 2: the files to replace, each as the preview showed it
    /// (with `at` and `from` of the previewed artifact and copy). A file whose live or backup
    /// bytes are no longer what was shown is refused, and then nothing is replaced.
    public var apply: [FolderFile]?

    public init(
        source: String, origin: String? = nil, kind: SourceKind? = nil, node: String, to: String, from: String? = nil,
        at: String? = nil, force: Bool? = nil, owner: String? = nil, svnTo: String? = nil, previewKey: String? = nil,
        showSecrets: Bool? = nil, apply: [FolderFile]? = nil
    ) {
        self.previewKey = previewKey
        self.showSecrets = showSecrets
        self.apply = apply
        self.source = source
        self.origin = origin
        self.kind = kind
        self.node = node
        self.to = to
        self.from = from
        self.at = at
        self.force = force
        self.owner = owner
        self.svnTo = svnTo
    }
}

/// What a `recover` task carries: the artifacts to read (one, or an svn repository and the Trac
/// environment backed up with it, from the same stamp) and where each goes on the task's node.
/// The agent restores them in order (the repository before the environment that links to it).
public struct RecoverOrder: Codable, Sendable, Equatable {
    public struct Piece: Codable, Sendable, Equatable {
        public var kind: SourceKind
        public var source: String
        /// An absolute path on the task's node, inside its `recovery_roots`.
        public var target: String
        /// The artifact and the copy to read it from (`sender`), read by the task's node
        /// (`receiver`) with a `recover` ticket signed at lease time; `sha256`/`md5`/`size` are
        /// the catalog's reference. When `sender` is the task's node it reads its own store.
        public var transfer: TransferOrder

        public init(kind: SourceKind, source: String, target: String, transfer: TransferOrder) {
            self.kind = kind
            self.source = source
            self.target = target
            self.transfer = transfer
        }
    }

    public var pieces: [Piece]
    public var origin: String
    /// The stamp every piece shares.
    public var stamp: String
    public var force: Bool?
    public var owner: String?
    /// For a `folder` source: compare and seal (step 1), nothing changed ...
    public var preview: Preview?
    /// ... or replace exactly these files (step 2).
    public var apply: [FolderFile]?

    public struct Preview: Codable, Sendable, Equatable {
        /// The admin CLI's one-time X25519 public key, raw, base64.
        public var key: String
        public var showSecrets: Bool?
        public init(key: String, showSecrets: Bool? = nil) {
            self.key = key
            self.showSecrets = showSecrets
        }
    }

    public init(pieces: [Piece], origin: String, stamp: String, force: Bool? = nil, owner: String? = nil) {
        self.pieces = pieces
        self.origin = origin
        self.stamp = stamp
        self.force = force
        self.owner = owner
    }
}

/// One file of a folder recovery as the preview showed it: its path relative to the folder,
/// the SHA-256 of the live file (nil when the live folder lacks it) and of the backup's.
public struct FolderFile: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var liveSha256: String?
    public var backupSha256: String
    public init(name: String, liveSha256: String?, backupSha256: String) {
        self.name = name
        self.liveSha256 = liveSha256
        self.backupSha256 = backupSha256
    }
}

/// What a folder recovery's preview found, for the admin's CLI only: every file of the
/// artifact that differs from the live one or is missing there, with `diff -u live backup`
/// (credential-looking lines masked unless asked otherwise), and how many are identical.
public struct FolderPreview: Codable, Sendable, Equatable {
    public struct Change: Codable, Sendable, Equatable {
        public var file: FolderFile
        /// `changed` or `new`.
        public var state: String
        public var diff: String
        /// Lines of the diff whose secret part was masked.
        public var masked: Int?
        public init(file: FolderFile, state: String, diff: String, masked: Int? = nil) {
            self.file = file
            self.state = state
            self.diff = diff
            self.masked = masked
        }
    }

    /// The artifact compared (store-relative) and the node whose copy was read.
    public var artifact: String
    public var from: String
    public var target: String
    public var identical: Int
    public var changes: [Change]
    public init(artifact: String, from: String, target: String, identical: Int, changes: [Change]) {
        self.artifact = artifact
        self.from = from
        self.target = target
        self.identical = identical
        self.changes = changes
    }
}

/// A ``FolderPreview`` sealed with ``SealedBox`` to the admin CLI's one-time key: the agent
/// that made it sends it with its result, the coordinator holds it in memory only (never in
/// the catalog or a log) until that CLI fetches it once (`GET /v1/recoveries/{task}/preview`),
/// and only the CLI holding the private key opens it. The format, key id and task id are bound
/// to the ciphertext.
public struct SealedPreview: Codable, Sendable, Equatable {
    public static let format = "scm-backup-recover-preview/1"
    public var format: String
    public var task: Int64
    /// ``SealedBox/keyID(of:)`` of the key it is sealed to.
    public var recipient: String
    public var encapsulatedKey: String
    public var ciphertext: String

    public init(format: String, task: Int64, recipient: String, encapsulatedKey: String, ciphertext: String) {
        self.format = format
        self.task = task
        self.recipient = recipient
        self.encapsulatedKey = encapsulatedKey
        self.ciphertext = ciphertext
    }

    static func associatedData(task: Int64, recipient: String) -> Data {
        Data("\(format)\n\(task)\n\(recipient)".utf8)
    }
}
