import Crypto
import Foundation

/// The coordinator's signed order to one node to delete exactly these copies
/// (`scm-backup-purge-order/1`, see `Protocol/purge.md`), signed with its purge key.
///
/// An agent deletes nothing without one: it checks the signature with the purge key in its
/// own `agent.toml`, that the order is for this node, this task and this lease (fencing
/// token), that it has not expired or been used, and then, per copy, that the file still has
/// the size and SHA-256 the order names; a copy that does not is quarantined, not deleted.
/// Its own floors apply whatever the order says.
public struct PurgeOrder: Codable, Sendable, Equatable {
    public static let format = "scm-backup-purge-order/1"

    /// One copy to delete.
    public struct Copy: Codable, Sendable, Equatable {
        /// Store-relative path.
        public var path: String
        public var size: Int64
        /// The catalog's reference digest; nil only for a legacy artifact known by MD5.
        public var sha256: String?
        public var md5: String?
        public init(path: String, size: Int64, sha256: String?, md5: String?) {
            self.path = path
            self.size = size
            self.sha256 = sha256
            self.md5 = md5
        }
    }

    public var format: String
    /// The catalog that made it (its random epoch).
    public var epoch: String
    /// Random, unique per order; a node refuses an order it carried out.
    public var id: String
    public var node: String
    public var taskId: Int64
    public var fencingToken: UInt64
    public var expiresAt: Date
    public var copies: [Copy]
    /// What to do with the node's trash (`scm-backup trash --node`); absent for a purge.
    public var trash: TrashOrder?

    public init(
        epoch: String, id: String = SignedEnvelope.randomID(), node: String, taskId: Int64, fencingToken: UInt64,
        expiresAt: Date, copies: [Copy], trash: TrashOrder? = nil
    ) {
        self.trash = trash
        format = Self.format
        self.epoch = epoch
        self.id = id
        self.node = node
        self.taskId = taskId
        self.fencingToken = fencingToken
        self.expiresAt = expiresAt
        self.copies = copies
    }

    /// The order as an envelope (``SignedEnvelope``), signed with the purge key.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        try SignedEnvelope.seal(try WireJSON.encoder().encode(self), type: Self.format, with: key)
    }

    /// Opens and checks an order for `node`'s task `taskId` under lease `fencingToken`.
    public static func verify(
        _ envelope: String, keys: SigningKeyring, node: String, taskId: Int64, fencingToken: UInt64,
        now: Date = Date()
    ) throws(SignedEnvelope.Refusal) -> PurgeOrder {
        let payload = try SignedEnvelope.open(
            envelope, type: format, keys: keys, what: "purge order", codePrefix: "order")
        let order: PurgeOrder
        do { order = try WireJSON.decoder().decode(PurgeOrder.self, from: payload) } catch {
            throw .init(
                code: .orderMalformed, message: "The purge order does not decode: \(WireJSON.describe(error)).")
        }
        guard order.format == format else {
            throw .init(code: .orderMalformed, message: "Purge order format '\(order.format)' is not \(format).")
        }
        guard order.node == node else {
            throw .init(
                code: .orderMisaddressed,
                message: "Purge order \(order.id) is for node '\(order.node)', not '\(node)'.")
        }
        guard order.taskId == taskId, order.fencingToken == fencingToken else {
            throw .init(
                code: .orderStale,
                message:
                    "Purge order \(order.id) is for task \(order.taskId) under token \(order.fencingToken), not task \(taskId) under \(fencingToken)."
            )
        }
        guard now.timeIntervalSince(order.expiresAt) <= TransferTicket.clockSkew else {
            throw .init(code: .orderExpired, message: "Purge order \(order.id) expired at \(order.expiresAt).")
        }
        return order
    }
}
