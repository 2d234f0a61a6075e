import BackupCore
import Crypto
import Foundation

/// The coordinator's authorisation of one transfer of one artifact between two nodes, signed
/// with its ticket key (Ed25519; `ticket-signing.key`, see `Protocol/transfer.md`).
///
/// On the wire it is one header, `SCM-Ticket: <base64url(payload)>.<base64url(signature)>`,
/// where the payload is the ticket's JSON and the signature is over exactly those bytes. The
/// serving or receiving agent checks the signature with the coordinator's public ticket key,
/// the expiry (allowing ``clockSkew``), that the URL's artifact is the ticket's, that it is
/// itself the ticket's party for that request and that the TLS peer is the other party.
public struct TransferTicket: Codable, Sendable, Equatable {
    public static let format = "scm-backup-ticket/1"
    /// How far a ticket's expiry may be past before it is refused: clocks may differ by this.
    public static let clockSkew: TimeInterval = 300

    public enum Purpose: String, Codable, Sendable {
        /// A copy to a paired backup node.
        case transfer
        /// A good copy replacing a quarantined mutant.
        case repair
    }

    public var format: String
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

    public init(
        id: String = TransferTicket.randomID(), taskId: Int64, fencingToken: UInt64, purpose: Purpose, path: String,
        sha256: String?, md5: String?, size: Int64, sender: String, receiver: String, expiresAt: Date
    ) {
        format = Self.format
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
    }

    public static func randomID() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The header value: payload and signature, each base64url without padding.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        let payload = try WireJSON.encoder().encode(self)
        let signature = try key.signature(for: payload)
        return Self.base64url(payload) + "." + Self.base64url(signature)
    }

    /// Why a ticket is refused; `code` is the wire error code.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var code: String
        public var message: String
        public var description: String { message }
    }

    /// Decodes a header value and checks its signature and expiry; the caller checks the
    /// parties and the path.
    public static func verify(_ header: String, key: Curve25519.Signing.PublicKey, now: Date = Date()) throws(Refusal)
        -> TransferTicket
    {
        let parts = header.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = unbase64url(parts[0]), let signature = unbase64url(parts[1]) else {
            throw Refusal(code: "ticket-malformed", message: "The SCM-Ticket header is not <payload>.<signature>.")
        }
        guard key.isValidSignature(signature, for: payload) else {
            throw Refusal(
                code: "ticket-forged",
                message: "The ticket's signature does not verify with the coordinator's ticket key.")
        }
        let ticket: TransferTicket
        do { ticket = try WireJSON.decoder().decode(TransferTicket.self, from: payload) } catch {
            throw Refusal(code: "ticket-malformed", message: "The ticket does not decode: \(WireJSON.describe(error)).")
        }
        guard ticket.format == format else {
            throw Refusal(
                code: "ticket-malformed",
                message: "Ticket format '\(ticket.format)' is not \(format): upgrade this agent.")
        }
        guard now.timeIntervalSince(ticket.expiresAt) <= clockSkew else {
            throw Refusal(
                code: "ticket-expired",
                message:
                    "Ticket \(ticket.id) for '\(ticket.path)' expired at \(ticket.expiresAt) (now \(now), \(Int(clockSkew)) s of clock skew allowed)."
            )
        }
        return ticket
    }

    static func base64url(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
