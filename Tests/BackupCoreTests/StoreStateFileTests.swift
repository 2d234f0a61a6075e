import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// The store's ledger and revocation list: a damaged one is refused naming the file, and only
/// an explicit adoption (init-store) or the coordinator's list replaces it.
struct StoreStateFileTests {
    @Test func aDamagedLedgerIsRefusedUntilInitStoreMakesANewOne() async throws {
        try await blocking {
            try withTemporaryDirectory("ledger") { dir in
                let store = try Store.openForWriting(dir.file("store"))
                try "{not json".write(toFile: store.ledgerPath, atomically: true, encoding: .utf8)
                let refused = #expect(throws: BackupError.self) { try store.readLedger() }
                #expect(refused?.code == .storeMarker)
                #expect(refused?.message.contains(store.ledgerPath) == true)
                // Opening for writing keeps refusing; adopting (init-store) replaces it.
                _ = try Store.openForWriting(dir.file("store"))
                #expect(throws: BackupError.self) { try store.readLedger() }
                try store.adopt()
                #expect(try store.readLedger() == TicketLedger())
            }
        }
    }

    @Test func aDamagedRevocationListIsNamedAndTheCoordinatorsListReplacesIt() async throws {
        try await blocking {
            try withTemporaryDirectory("revoked") { dir in
                let store = try Store.openForWriting(dir.file("store"))
                #expect(try store.readRevokedSerials() == nil)
                try store.mergeRevokedSerials(["AB"])
                try store.mergeRevokedSerials(["cd"])
                #expect(try store.readRevokedSerials() == ["ab", "cd"])
                try "garbage".write(toFile: store.revokedSerialsPath, atomically: true, encoding: .utf8)
                let refused = #expect(throws: BackupError.self) { try store.readRevokedSerials() }
                #expect(refused?.message.contains("is not valid JSON") == true)
                #expect(try store.mergeRevokedSerials(["ab", "cd", "ef"]) == ["ab", "cd", "ef"])
            }
        }
    }
}
