import BackupCore
import Foundation

/// What a task found or changed in one node's store, reported with its result so that the
/// coordinator's catalog knows every copy on every node.
public struct ArtifactReport: Codable, Sendable, Equatable {
    /// True when `copies` lists every artifact of the store (inventory, verify): the catalog
    /// then forgets the node's copies that are not listed.
    public var complete: Bool
    public var copies: [CopyReport]
    /// Store-relative paths of the artifacts a purge deleted.
    public var deleted: [String]?
    /// With an inventory: every mutant in the store's quarantine (absent from older agents).
    public var quarantine: [QuarantineEntry]?

    public init(
        complete: Bool, copies: [CopyReport], deleted: [String]? = nil, quarantine: [QuarantineEntry]? = nil
    ) {
        self.quarantine = quarantine
        self.complete = complete
        self.copies = copies
        self.deleted = deleted
    }
}

/// One copy of an artifact in a node's store, with what its sidecar says.
public struct CopyReport: Codable, Sendable, Equatable {
    /// Store-relative: `<origin>/<kind>/<source>/<YYYY>/<MM>/<DD>/<HHMMSS>/<file>`.
    public var path: String
    public var origin: String
    public var kind: String
    public var source: String
    /// `YYYY/MM/DD/HHMMSS` (UTC).
    public var stamp: String
    /// The file's size on disk.
    public var size: Int64
    /// The digests the sidecar records (nil where it records none or cannot be read).
    public var sha256: String?
    public var md5: String?
    public var revision: String?
    /// The creation time the sidecar records.
    public var created: Date?
    /// `intact`, `mutant`, `missing-sidecar`, `invalid-sidecar`, `unreadable` after a verify;
    /// `unverified` where the task only listed the copy.
    public var state: CopyState
    /// When this task verified it (nil when it did not).
    public var verifiedAt: Date?
    /// Why it is not intact.
    public var problem: String?
    /// Why the sidecar flags the artifact a regression of its source (see `Protocol/dna.md`).
    public var regressions: [String]?
    /// The receipt beside the copy (`<artifact>.dna.sig`, ``ArtifactReceipt``) as the node read
    /// it, unverified: an inventory reports it for a catalog being rebuilt, which verifies it.
    public var receipt: String?

    public init(
        path: String, origin: String, kind: String, source: String, stamp: String, size: Int64, sha256: String?,
        md5: String?, revision: String?, created: Date?, state: CopyState, verifiedAt: Date? = nil,
        problem: String? = nil, regressions: [String]? = nil
    ) {
        self.regressions = regressions
        self.path = path
        self.origin = origin
        self.kind = kind
        self.source = source
        self.stamp = stamp
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.revision = revision
        self.created = created
        self.state = state
        self.verifiedAt = verifiedAt
        self.problem = problem
    }
}

/// `GET /v1/artifacts` (operator): an artifact with its copies per node.
public struct ArtifactInfo: Codable, Sendable, Equatable {
    public var origin: String
    public var kind: String
    public var source: String
    public var stamp: String
    public var fileName: String
    public var size: Int64
    /// The digests recorded when the catalog first learned of it from its origin: the
    /// authority copies are compared against.
    public var sha256: String?
    public var md5: String?
    public var revision: String?
    public var created: Date?
    public var copies: [CopyInfo]
    /// False while the digests above are not yet the origin's own (a copy elsewhere named
    /// the artifact first): such an artifact is not transferred, repaired from or counted
    /// until its origin reports its backup. Absent from older coordinators.
    public var confirmed: Bool?
    /// The catalog's id of the artifact: the cursor of `GET /v1/artifacts?after=ID` (absent
    /// from older coordinators).
    public var id: Int64?
    /// Why the origin's backup flagged it as a regression (revision backwards, UUID changed,
    /// size collapsed); absent when it was not flagged, and from older coordinators.
    public var regressions: [String]?
    /// When the catalog first recorded it, by the hub's clock (absent from older coordinators).
    public var firstSeenAt: Date?
    /// When the purge stage first saw it with its `copies` verified copies on backup nodes:
    /// from then on its policy may delete it on one node while another keeps it longer.
    public var replicatedAt: Date?

    public init(
        origin: String, kind: String, source: String, stamp: String, fileName: String, size: Int64, sha256: String?,
        md5: String?, revision: String?, created: Date?, copies: [CopyInfo], confirmed: Bool? = nil, id: Int64? = nil,
        regressions: [String]? = nil, firstSeenAt: Date? = nil, replicatedAt: Date? = nil
    ) {
        self.replicatedAt = replicatedAt
        self.id = id
        self.regressions = regressions
        self.firstSeenAt = firstSeenAt
        self.confirmed = confirmed
        self.origin = origin
        self.kind = kind
        self.source = source
        self.stamp = stamp
        self.fileName = fileName
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.revision = revision
        self.created = created
        self.copies = copies
    }
}

/// One node's copy of an artifact, as the catalog knows it.
public struct CopyInfo: Codable, Sendable, Equatable {
    public var node: String
    public var path: String
    public var size: Int64
    /// `intact`, `mutant`, `unverified`, ... (see ``CopyReport/state``); `mismatch` when the
    /// copy's sidecar disagrees with the catalog's digest.
    public var state: CopyState
    /// When an agent last listed it, and last verified it.
    public var seenAt: Date
    public var verifiedAt: Date?
    public var problem: String?

    public init(
        node: String, path: String, size: Int64, state: CopyState, seenAt: Date, verifiedAt: Date?, problem: String?
    ) {
        self.node = node
        self.path = path
        self.size = size
        self.state = state
        self.seenAt = seenAt
        self.verifiedAt = verifiedAt
        self.problem = problem
    }
}
