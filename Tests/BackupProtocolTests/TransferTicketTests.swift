import BackupProtocol
import Crypto
import Foundation
import Testing

/// Tickets: signed by the coordinator's ticket key, refused when forged, tampered with,
/// expired beyond the clock-skew allowance, or malformed.
struct TransferTicketTests {
    static let key = Curve25519.Signing.PrivateKey()
    static func ticket(expiresIn seconds: TimeInterval = 3600) -> TransferTicket {
        TransferTicket(
            taskId: 7, fencingToken: 42, purpose: .transfer, path: "cms02/svn/env/2026/11/27/091302/env-5.tar.gz",
            sha256: String(repeating: "ab", count: 32), md5: nil, size: 14_663, sender: "cms02", receiver: "backup1",
            expiresAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded(.down)))
    }

    @Test func aSignedTicketVerifiesWithTheCoordinatorsKey() throws {
        let ticket = Self.ticket()
        let header = try ticket.signed(with: Self.key)
        #expect(try TransferTicket.verify(header, key: Self.key.publicKey) == ticket)
    }

    @Test func aTicketSignedByAnotherKeyIsForged() throws {
        let header = try Self.ticket().signed(with: Curve25519.Signing.PrivateKey())
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(header, key: Self.key.publicKey)
        }
        #expect(refusal?.code == "ticket-forged")
    }

    @Test func aTamperedPayloadIsForged() throws {
        let header = try Self.ticket().signed(with: Self.key)
        let parts = header.split(separator: ".")
        var payload = try #require(
            Data(
                base64Encoded: String(parts[0]).replacingOccurrences(of: "-", with: "+")
                    .replacingOccurrences(of: "_", with: "/").padding(
                        toLength: (parts[0].count + 3) / 4 * 4, withPad: "=", startingAt: 0)))
        let text = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "backup1", with: "intrude")
        payload = Data(text.utf8)
        let forged =
            payload.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
                of: "/", with: "_"
            )
            .replacingOccurrences(of: "=", with: "") + "." + parts[1]
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(forged, key: Self.key.publicKey)
        }
        #expect(refusal?.code == "ticket-forged")
    }

    @Test func expiryAllowsAFewMinutesOfClockSkewAndNoMore() throws {
        let late = try Self.ticket(expiresIn: -120).signed(with: Self.key)
        #expect(try TransferTicket.verify(late, key: Self.key.publicKey).receiver == "backup1")
        let expired = try Self.ticket(expiresIn: -400).signed(with: Self.key)
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(expired, key: Self.key.publicKey)
        }
        #expect(refusal?.code == "ticket-expired")
        #expect(refusal?.message.contains("expired at") == true)
    }

    @Test(arguments: ["", "abc", "a.b.c", "!!!.???"])
    func aMalformedHeaderIsRefused(_ header: String) {
        let refusal = #expect(throws: TransferTicket.Refusal.self) {
            try TransferTicket.verify(header, key: Self.key.publicKey)
        }
        #expect(refusal?.code == "ticket-malformed" || refusal?.code == "ticket-forged")
    }
}
