import BackupProtocol
import Crypto
import Foundation
import Testing

/// Tickets and purge orders: signed by the coordinator's keys in one typed envelope, refused
/// when forged, tampered with, of the other type, expired beyond the clock-skew allowance,
/// misaddressed, for another lease, or malformed.
struct TransferTicketTests {
    static let key = Curve25519.Signing.PrivateKey()
    static func ticket(expiresIn seconds: TimeInterval = 3600) -> TransferTicket {
        TransferTicket(
            epoch: "0123456789abcdef0123456789abcdef", taskId: 7, fencingToken: 42, purpose: .transfer,
            path: "cms02/svn/env/2026/11/27/091302/env-5.tar.gz", sha256: String(repeating: "ab", count: 32), md5: nil,
            size: 14_663, sender: "cms02", receiver: "backup1",
            expiresAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded(.down)),
            facts: .init(origin: "cms02", kind: "svn", source: "env", revision: "5", created: nil))
    }

    static func order(node: String = "backup1", expiresIn seconds: TimeInterval = 120) -> PurgeOrder {
        PurgeOrder(
            epoch: "0123456789abcdef0123456789abcdef", node: node, taskId: 9, fencingToken: 77,
            expiresAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded(.down)),
            copies: [.init(path: "cms02/svn/env/2026/11/27/091302/env-5.tar.gz", size: 14_663, sha256: "ab", md5: nil)])
    }

    @Test func aPurgeOrderVerifiesOnlyForItsNodeTaskAndLease() throws {
        let order = Self.order()
        let envelope = try order.signed(with: Self.key)
        #expect(
            try PurgeOrder.verify(
                envelope, keys: SigningKeyring(Self.key.publicKey), node: "backup1", taskId: 9, fencingToken: 77)
                == order)
        let cases: [(String, Int64, UInt64, String)] = [
            ("vault", 9, 77, "order-misaddressed"), ("backup1", 8, 77, "order-stale"),
            ("backup1", 9, 76, "order-stale"),
        ]
        for (node, task, token, code) in cases {
            let refusal = #expect(throws: SignedEnvelope.Refusal.self) {
                try PurgeOrder.verify(
                    envelope, keys: SigningKeyring(Self.key.publicKey), node: node, taskId: task, fencingToken: token)
            }
            #expect(refusal?.code.rawValue == code)
        }
        let forged = #expect(throws: SignedEnvelope.Refusal.self) {
            try PurgeOrder.verify(
                try order.signed(with: Curve25519.Signing.PrivateKey()), keys: SigningKeyring(Self.key.publicKey),
                node: "backup1",
                taskId: 9, fencingToken: 77)
        }
        #expect(forged?.code == "order-forged")
        let expired = #expect(throws: SignedEnvelope.Refusal.self) {
            try PurgeOrder.verify(
                try Self.order(expiresIn: -400).signed(with: Self.key), keys: SigningKeyring(Self.key.publicKey),
                node: "backup1",
                taskId: 9, fencingToken: 77)
        }
        #expect(expired?.code == "order-expired")
    }

    @Test func aMessageSignedAsOneTypeIsNeverAcceptedAsAnother() throws {
        // The same key signs both here: the signed type still keeps them apart.
        let ticket = try Self.ticket().signed(with: Self.key)
        let asOrder = #expect(throws: SignedEnvelope.Refusal.self) {
            try PurgeOrder.verify(
                ticket, keys: SigningKeyring(Self.key.publicKey), node: "backup1", taskId: 7, fencingToken: 42)
        }
        #expect(asOrder?.code == "order-forged")
        let order = try Self.order().signed(with: Self.key)
        let asTicket = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(order, keys: SigningKeyring(Self.key.publicKey))
        }
        #expect(asTicket?.code == "ticket-forged")
    }

    @Test func aSignedTicketVerifiesWithTheCoordinatorsKey() throws {
        let ticket = Self.ticket()
        let header = try ticket.signed(with: Self.key)
        #expect(try TransferTicket.verify(header, keys: SigningKeyring(Self.key.publicKey)) == ticket)
    }

    @Test func aTicketSignedByAnotherKeyIsForged() throws {
        let header = try Self.ticket().signed(with: Curve25519.Signing.PrivateKey())
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(header, keys: SigningKeyring(Self.key.publicKey))
        }
        #expect(refusal?.code == "ticket-forged")
    }

    @Test func aTamperedPayloadIsForged() throws {
        let header = try Self.ticket().signed(with: Self.key)
        let parts = header.split(separator: ".")
        var payload = try #require(
            Data(
                base64Encoded: String(parts[1]).replacingOccurrences(of: "-", with: "+")
                    .replacingOccurrences(of: "_", with: "/").padding(
                        toLength: (parts[1].count + 3) / 4 * 4, withPad: "=", startingAt: 0)))
        let text = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "backup1", with: "intrude")
        payload = Data(text.utf8)
        let forged =
            parts[0] + "."
            + payload.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
                of: "/", with: "_"
            )
            .replacingOccurrences(of: "=", with: "") + "." + parts[2]
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(forged, keys: SigningKeyring(Self.key.publicKey))
        }
        #expect(refusal?.code == "ticket-forged")
    }

    @Test func expiryAllowsAFewMinutesOfClockSkewAndNoMore() throws {
        let late = try Self.ticket(expiresIn: -120).signed(with: Self.key)
        #expect(try TransferTicket.verify(late, keys: SigningKeyring(Self.key.publicKey)).receiver == "backup1")
        let expired = try Self.ticket(expiresIn: -400).signed(with: Self.key)
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(expired, keys: SigningKeyring(Self.key.publicKey))
        }
        #expect(refusal?.code == "ticket-expired")
        #expect(refusal?.message.contains("expired at") == true)
    }

    @Test(arguments: ["", "abc", "a.b.c", "!!!.???"])
    func aMalformedHeaderIsRefused(_ header: String) {
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(header, keys: SigningKeyring(Self.key.publicKey))
        }
        #expect(refusal?.code == "ticket-malformed" || refusal?.code == "ticket-forged")
    }

    @Test func aRingTrustsEveryKeyItListsAndOnlyThose() throws {
        let newHub = Curve25519.Signing.PrivateKey()
        var ring = SigningKeyring(Self.key.publicKey, file: "old-ticket.pub")
        ring.add(newHub.publicKey, file: "new-ticket.pub")
        // A new hub's ticket passes once its key is added, and the old hub's still does.
        #expect(try TransferTicket.verify(try Self.ticket().signed(with: newHub), keys: ring).receiver == "backup1")
        #expect(try TransferTicket.verify(try Self.ticket().signed(with: Self.key), keys: ring).receiver == "backup1")
        // A key nobody listed is refused, naming its id and the ids that are trusted.
        let stranger = Curve25519.Signing.PrivateKey()
        let unknown = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(try Self.ticket().signed(with: stranger), keys: ring)
        }
        #expect(unknown?.code == "ticket-forged")
        #expect(unknown?.message.contains(SigningKeyring.keyID(of: stranger.publicKey)) == true)
        #expect(unknown?.message.contains("new-ticket.pub") == true)
        // The key id is signed: relabelling a stranger's envelope with a trusted id fails.
        let relabelled = try Self.ticket().signed(with: stranger).split(separator: ".")
        let claimed = SigningKeyring.keyID(of: newHub.publicKey) + "." + relabelled[1] + "." + relabelled[2]
        let forged = #expect(throws: TransferTicket.Refusal.self) { try TransferTicket.verify(claimed, keys: ring) }
        #expect(forged?.code == "ticket-forged")
        #expect(forged?.message.contains("new-ticket.pub") == true)
        // A version 1 envelope (no key id) is not read.
        let old = try Self.ticket().signed(with: Self.key).split(separator: ".").dropFirst().joined(separator: ".")
        let v1 = #expect(throws: TransferTicket.Refusal.self) { try TransferTicket.verify(old, keys: ring) }
        #expect(v1?.code == "ticket-malformed")
    }

    @Test func keyIDsAreDerivedFromTheKey() throws {
        let key = Curve25519.Signing.PrivateKey()
        let id = SigningKeyring.keyID(of: key.publicKey)
        #expect(id.count == 16)
        let same = try Curve25519.Signing.PublicKey(rawRepresentation: key.publicKey.rawRepresentation)
        #expect(id == SigningKeyring.keyID(of: same))
        #expect(id != SigningKeyring.keyID(of: Curve25519.Signing.PrivateKey().publicKey))
    }
}
