import BackupCore
import Foundation

/// What a `transfer` task carries: one artifact from `sender` to `receiver`. The task runs on
/// the node that opens the connection: the sender for `push` (it PUTs to the receiver's data
/// port), the receiver for `pull` (it GETs from the sender's).
public struct TransferOrder: Codable, Sendable, Equatable {
    public enum Direction: String, Codable, Sendable {
        case push, pull
    }

    /// The artifact, store-relative.
    public var path: String
    /// The digests and size the catalog recorded: the authority the copy must match.
    public var sha256: String?
    public var md5: String?
    public var size: Int64
    public var sender: String
    public var receiver: String
    public var direction: Direction
    public var purpose: TransferTicket.Purpose
    /// Bytes per second the transfer may use (the pairing's limit); nil for no limit.
    public var bandwidthLimit: Int64?
    /// Set when the task is leased: the signed ticket (the `SCM-Ticket` header) and the other
    /// party's data port URL, e.g. `https://backup1.example.org:8444`.
    public var ticket: String?
    public var peerURL: String?
    /// Set when leased: the catalog's facts of the artifact, from which a pulling receiver
    /// writes its sidecar (never from what the sender sends).
    public var facts: TransferTicket.Facts?
    /// For a repair: the senders whose copies already failed to arrive intact; the next repair
    /// is taken from another.
    public var triedSenders: [String]?
    /// Set when leased, as in the ticket (``TransferTicket/replacesBadCopy``): a pulling
    /// receiver quarantines the bad file at the path before it receives.
    public var replacesBadCopy: Bool?
    /// Set when leased, as in the ticket (``TransferTicket/receipt``): the initiating party
    /// writes it beside its copy (``ArtifactReceipt``).
    public var receipt: String?

    public init(
        path: String, sha256: String?, md5: String?, size: Int64, sender: String, receiver: String,
        direction: Direction, purpose: TransferTicket.Purpose, bandwidthLimit: Int64? = nil, ticket: String? = nil,
        peerURL: String? = nil
    ) {
        self.path = path
        self.sha256 = sha256
        self.md5 = md5
        self.size = size
        self.sender = sender
        self.receiver = receiver
        self.direction = direction
        self.purpose = purpose
        self.bandwidthLimit = bandwidthLimit
        self.ticket = ticket
        self.peerURL = peerURL
    }

    /// The node that runs the task (opens the connection).
    public var initiator: String { direction == .push ? sender : receiver }
}

/// `POST /v1/transfers` (admin): copy what `from` holds and `to` lacks, optionally of one source.
public struct TransferRequest: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var source: String?
    /// Only artifacts made on this UTC day, `YYYY-MM-DD` (the legacy "copy over the reps for a
    /// specific day").
    public var at: String?
    public init(from: String, to: String, source: String? = nil, at: String? = nil) {
        self.from = from
        self.to = to
        self.source = source
        self.at = at
    }

    /// The store stamp prefix (`YYYY/MM/DD`) of ``at``; throws `invalid-argument` naming it.
    public func stampPrefix() throws -> String? {
        guard let at else { return nil }
        let parts = at.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day)
        else {
            throw BackupError(
                .invalidArgument, "at='\(at.prefix(40))' is not a day such as 2026-12-01 (YYYY-MM-DD, UTC).")
        }
        return parts.joined(separator: "/")
    }
}

/// The answer to a transfer request: a task per artifact to copy, and the artifacts `to`
/// already holds intact (no bytes move for those).
public struct TransferPlan: Codable, Sendable, Equatable {
    public var queued: [TaskInfo]
    public var skipped: [String]
    /// Artifacts not queued because the receiver's reported free space is below their size plus
    /// a margin; absent when none.
    public var noSpace: [String]?
    /// Why they were not queued (the receiver's free space and what they need).
    public var noSpaceReason: String?
    public init(queued: [TaskInfo], skipped: [String], noSpace: [String]? = nil, noSpaceReason: String? = nil) {
        self.queued = queued
        self.skipped = skipped
        self.noSpace = noSpace
        self.noSpaceReason = noSpaceReason
    }
}

/// What a receiving data port answers to a PUT, and a pulling receiver reports: the digests it
/// computed itself over the bytes it published.
public struct ReceiveResult: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var sha256: String?
    public var md5: String?
    /// Bytes that were already there from an interrupted attempt.
    public var resumedFrom: Int64
    /// True when the receiver already held the artifact: no bytes moved.
    public var skipped: Bool
    public init(path: String, size: Int64, sha256: String?, md5: String?, resumedFrom: Int64, skipped: Bool) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.resumedFrom = resumedFrom
        self.skipped = skipped
    }
}

/// Header names of the data port.
public enum DataHeader {
    /// The signed ticket.
    public static let ticket = "SCM-Ticket"
    /// The artifact's DNA (its JSON, base64), sent with the bytes.
    public static let dna = "SCM-DNA"
    /// HEAD on a receiver: bytes of a partial already received.
    public static let received = "SCM-Received"
    /// HEAD on a receiver: the SHA-256 of the artifact when it already holds it.
    public static let have = "SCM-Have"
}
