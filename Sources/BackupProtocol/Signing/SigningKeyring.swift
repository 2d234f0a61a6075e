import BackupCore
import Crypto
import Foundation

/// The coordinator keys one side trusts for one kind of signed message (``SignedEnvelope``),
/// by key id.
///
/// A key's id is derived from the key itself (the first 16 hex digits of the SHA-256 of its raw
/// 32 bytes), never taken from a message: an envelope's id only says which of these keys to
/// try. An agent's ring is its `ticket_key` plus `trusted_signing_keys` (tickets and receipts)
/// and its `purge_key` plus `trusted_purge_keys` (purge orders), so a hub with new keys is
/// trusted by adding a file name, and a key is retired by removing it.
public struct SigningKeyring: Sendable, Equatable {
    public static func == (a: SigningKeyring, b: SigningKeyring) -> Bool { a.ids == b.ids }

    public struct Entry: Sendable {
        public var id: String
        public var key: Curve25519.Signing.PublicKey
        /// Where the key was read from, for messages ("ticket-signing.pub").
        public var file: String
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// A ring of one key (`file` names it in messages).
    public init(_ key: Curve25519.Signing.PublicKey, file: String = "the coordinator's key") {
        add(key, file: file)
    }

    /// Reads each file as an Ed25519 public key (PEM); a file that is not one is refused, named.
    public init(files: [String]) throws {
        for file in files {
            do { add(try Ed25519PEM.readPublicKey(file), file: file) } catch {
                throw BackupError(.configInvalid, "'\(file)' is not an Ed25519 public key: \(error)")
            }
        }
    }

    /// Adds `key` unless a key with its id is already held.
    public mutating func add(_ key: Curve25519.Signing.PublicKey, file: String) {
        let id = Self.keyID(of: key)
        guard self.key(id) == nil else { return }
        entries.append(Entry(id: id, key: key, file: file))
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var ids: [String] { entries.map(\.id) }

    public func key(_ id: String) -> Curve25519.Signing.PublicKey? { entries.first { $0.id == id }?.key }
    public func file(_ id: String) -> String? { entries.first { $0.id == id }?.file }

    /// "3f2a9c01d4e5b6a7 (ticket-signing.pub), …" or "none".
    public var describe: String {
        entries.isEmpty
            ? "none" : entries.map { "\($0.id) (\(($0.file as NSString).lastPathComponent))" }.joined(separator: ", ")
    }

    /// The id of `key`: 16 lower-case hex digits of the SHA-256 of its raw representation.
    public static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func isKeyID(_ text: Substring) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
