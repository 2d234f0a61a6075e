import BackupCore
import Crypto
import Foundation

/// The coordinator's authorisation of one transfer of one artifact between two nodes, signed
/// with its ticket key (Ed25519; `ticket-signing.key`, see `Protocol/transfer.md`).
///
/// On the wire it is one header, `SCM-Ticket: <envelope>` (a ``SignedEnvelope`` of type
/// `scm-backup-ticket/2`). The serving or receiving agent checks the signature with the
/// coordinator's public ticket key, the expiry (allowing ``clockSkew``), that the URL's
/// artifact is the ticket's, that it is itself the ticket's party for that request and that
/// the TLS peer is the other party; a receiver also refuses a ticket it spent or one older
/// than the newest it saw for the same task (its ledger, `Protocol/store.md`). A ticket lives
/// at most twice the lease; each renewal of the lease brings a fresh one.
///
/// The ticket carries the catalog's facts of the artifact (origin, kind, source, revision,
/// creation, regressions): the receiver writes its sidecar from those and the digests it
/// computed, never from what the sender says.
public struct TransferTicket: Codable, Sendable, Equatable {
    public static let format = "scm-backup-ticket/2"
    /// How far a ticket's expiry may be past before it is refused: clocks may differ by this.
    public static let clockSkew: TimeInterval = 300

    public enum Purpose: String, Codable, Sendable {
        /// A copy to a paired backup node.
        case transfer
        /// A good copy replacing a quarantined mutant.
        case repair
        /// A hub being restored reads its own self-backup from this node (`scm-backup hub
        /// restore`): only a GET (or an index of one source, `path` then names
        /// `<origin>/<kind>/<source>`), only by a peer with a coordinator certificate named as
        /// the ticket's receiver. See `Protocol/hub.md`.
        case restore
        /// The agent of a node being recovered reads one artifact from this node into its
        /// scratch folder (`scm-backup recover --node`): only a GET, only by the agent named as
        /// the ticket's receiver; the bytes never enter its store. See `Protocol/transfer.md`.
        case recover
    }

    /// What the catalog knows of the artifact, for the receiver's sidecar.
    public struct Facts: Codable, Sendable, Equatable {
        public var origin: String
        public var kind: String
        public var source: String
        public var revision: String?
        /// When the artifact was made on its origin.
        public var created: Date?
        /// Why its origin flagged it a regression; absent when none.
        public var regressions: [String]?
        /// The sidecar of the artifact at `path` with `digests`, from these facts alone.
        public func sidecar(path: String, digests: ArtifactDigests) -> DNA {
            var dna = DNA(
                artifact: (path as NSString).lastPathComponent, digests: digests, origin: origin, kind: kind,
                source: source, revision: revision ?? "", created: created ?? Date(timeIntervalSince1970: 0))
            dna.revision = revision
            dna.created = created
            dna.regressions = regressions
            return dna
        }

        public init(
            origin: String, kind: String, source: String, revision: String?, created: Date?,
            regressions: [String]? = nil
        ) {
            self.origin = origin
            self.kind = kind
            self.source = source
            self.revision = revision
            self.created = created
            self.regressions = regressions
        }
    }

    public var format: String
    /// The catalog that signed it (its random epoch).
    public var epoch: String
    /// Unique per ticket (random hex); a receiver refuses a ticket whose transfer it completed.
    public var id: String
    public var taskId: Int64
    public var fencingToken: UInt64
    public var purpose: Purpose
    /// The artifact, store-relative (`<origin>/<kind>/<source>/YYYY/MM/DD/HHMMSS/<file>`).
    public var path: String
    /// The digest the catalog recorded (SHA-256; MD5 only for a legacy artifact without one).
    public var sha256: String?
    public var md5: String?
    public var size: Int64
    public var sender: String
    public var receiver: String
    public var expiresAt: Date
    public var facts: Facts
    /// The catalog holds the receiver's copy at `path` as bad (mismatched, a mutant,
    /// quarantined or missing): a file there whose sidecar does not name this ticket's digest
    /// is quarantined (never deleted) and the copy received in its place. Absent or false: such
    /// a file is refused (`exists-different`), as a transfer never overwrites.
    public var replacesBadCopy: Bool?
    /// The artifact's receipt (``ArtifactReceipt``), which each party writes beside its copy
    /// as `<artifact>.dna.sig` once it verifies and names this artifact; absent for an artifact
    /// its origin never confirmed.
    public var receipt: String?

    public init(
        epoch: String, id: String = TransferTicket.randomID(), taskId: Int64, fencingToken: UInt64, purpose: Purpose,
        path: String, sha256: String?, md5: String?, size: Int64, sender: String, receiver: String, expiresAt: Date,
        facts: Facts, replacesBadCopy: Bool? = nil
    ) {
        format = Self.format
        self.epoch = epoch
        self.id = id
        self.taskId = taskId
        self.fencingToken = fencingToken
        self.purpose = purpose
        self.path = path
        self.sha256 = sha256
        self.md5 = md5
        self.size = size
        self.sender = sender
        self.receiver = receiver
        self.expiresAt = expiresAt
        self.facts = facts
        self.replacesBadCopy = replacesBadCopy
    }

    public static func randomID() -> String { SignedEnvelope.randomID() }

    /// The header value: the ticket in a signed envelope.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        try SignedEnvelope.seal(try WireJSON.encoder().encode(self), type: Self.format, with: key)
    }

    /// Why a ticket is refused; `code` is the wire error code.
    public typealias Refusal = SignedEnvelope.Refusal

    /// Decodes a header value and checks its signature and expiry; the caller checks the
    /// parties, the path and its ledger.
    public static func verify(_ header: String, keys: SigningKeyring, now: Date = Date()) throws(Refusal)
        -> TransferTicket
    {
        let payload = try SignedEnvelope.open(header, type: format, keys: keys, what: "ticket", codePrefix: "ticket")
        let ticket: TransferTicket
        do { ticket = try WireJSON.decoder().decode(TransferTicket.self, from: payload) } catch {
            throw Refusal(code: .ticketMalformed, message: "The ticket does not decode: \(WireJSON.describe(error)).")
        }
        guard ticket.format == format else {
            throw Refusal(
                code: .ticketMalformed,
                message: "Ticket format '\(ticket.format)' is not \(format): upgrade this agent.")
        }
        guard now.timeIntervalSince(ticket.expiresAt) <= clockSkew else {
            throw Refusal(
                code: .ticketExpired,
                message:
                    "Ticket \(ticket.id) for '\(ticket.path)' expired at \(ticket.expiresAt) (now \(now), \(Int(clockSkew)) s of clock skew allowed)."
            )
        }
        return ticket
    }

    /// The sidecar a receiver writes for the bytes it received and hashed: the catalog's facts,
    /// and the digests it computed (which must equal the ticket's before it is published).
    public func sidecar() -> DNA {
        facts.sidecar(path: path, digests: ArtifactDigests(size: size, sha256: sha256, md5: md5))
    }
}
