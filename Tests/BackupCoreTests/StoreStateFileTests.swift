import BackupTesting
import Foundation
import Testing

@testable import BackupCore

#if canImport(Glibc)
    import Glibc
#endif

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

    @Test func onlyReceivedPartialsNoTicketNamesAnyMoreAreRemoved() async throws {
        try await blocking {
            try withTemporaryDirectory("partials") { dir in
                let store = try Store.openForWriting(dir.file("store"))
                let stamp = "srv1/svn/repo/2026/12/03/101145"
                let resumable = "\(stamp)/repo-96.tar.gz"
                let abandoned = "srv1/svn/repo/2026/12/02/101145/repo-90.tar.gz"
                let backup = "vault/folder/conf/2026/12/03/101145/conf.tar.gz"
                let fresh = "srv1/folder/conf/2026/12/03/101145/conf-3.tar.gz"
                let now = Date()
                try store.updateLedger { ledger in
                    ledger.note(
                        epoch: "e", task: 7, token: 1, spent: nil, expiresAt: now.addingTimeInterval(120),
                        path: resumable, now: now)
                }
                let hourAgo = timespec(tv_sec: Int(now.timeIntervalSince1970) - 3600, tv_nsec: 0)
                for relative in [resumable, abandoned, backup, fresh] {
                    let path = store.root + "/" + relative + ".partial"
                    try FileManager.default.createDirectory(
                        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try Data("partial".utf8).write(to: URL(fileURLWithPath: path))
                    if relative != fresh {
                        var times = [hourAgo, hourAgo]
                        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
                    }
                }
                let removed = try store.removeAbandonedPartials(now: now)
                #expect(removed == [store.root + "/" + abandoned + ".partial"])
                #expect(
                    Set(try store.scan().partials.map { String($0.dropFirst(store.root.count + 1)) }) == [
                        resumable + ".partial", backup + ".partial", fresh + ".partial",
                    ])
                // Once the ledger forgets the task, its partial goes too.
                try store.updateLedger { ledger in
                    let later = now.addingTimeInterval(120 + TicketLedger.keepAfterExpiry)
                    ledger.note(epoch: "e", task: 8, token: 1, spent: nil, expiresAt: later, now: later)
                }
                #expect(try store.removeAbandonedPartials(now: now) == [store.root + "/" + resumable + ".partial"])
            }
        }
    }
}
