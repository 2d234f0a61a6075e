import BackupCore
import BackupTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A store's own floors under an order (``Store/purge(exactly:expected:floors:now:)``): what it
/// keeps whatever the order names, each refusal by name; the trash, its restore and its emptying.
struct PurgeFloorTests {
    /// Five daily backups, the newest `newestDaysAgo` days before now.
    private func store(in dir: TemporaryDirectory, newestDaysAgo: Double = 1) throws -> (Store, [String]) {
        try FixtureTree.make(at: dir.file("src"))
        let store = try Store.openForWriting(dir.file("store"))
        let paths = try [4.0, 3, 2, 1, 0].map { day in
            try store.backupFolder(
                dir.file("src"), node: "n", name: "conf",
                now: Date().addingTimeInterval(-(day + newestDaysAgo) * 86_400)
            ).path
        }
        return (store, paths.map { String($0.dropFirst(store.root.count + 1)) })
    }

    private func floors(keep: Int = 1, minAge: TimeInterval = 0, max: Int = 500, trash: Double = 24) -> PurgeFloors {
        var f = PurgeFloors()
        f.keep = keep
        f.minAge = minAge
        f.maxPerOrder = max
        f.trashHours = trash
        return f
    }

    @Test func floorKeepKeepsTheNewestThatVerifyWhateverTheOrderSays() throws {
        try withTemporaryDirectory("floor-keep") { dir in
            let (store, paths) = try store(in: dir)
            let items = try store.purge(exactly: paths, floors: floors(keep: 2))
            #expect(items.filter { !$0.keep }.count == 3)
            let kept = items.filter(\.keep)
            #expect(Set(kept.map(\.artifact.path)) == Set(paths[3...].map { store.root + "/" + $0 }))
            #expect(kept.allSatisfy { $0.reasons == ["floor_keep: one of the newest 2 that verify"] })
            #expect(try store.scan().artifacts.count == 2)
        }
    }

    @Test func floorMinAgeKeepsWhatIsTooYoung() throws {
        try withTemporaryDirectory("floor-age") { dir in
            let (store, paths) = try store(in: dir, newestDaysAgo: 0)
            // Made 4, 3, 2, 1 and 0 days ago; nothing younger than 2.5 days goes.
            let items = try store.purge(exactly: Array(paths[..<4]), floors: floors(minAge: 2.5 * 86_400))
            #expect(items.filter { !$0.keep }.count == 2)
            let young = items.filter(\.keep)
            #expect(young.count == 2 && young.allSatisfy { $0.reasons[0].hasPrefix("younger than floor_min_age") })
        }
    }

    @Test func floorMaxPerOrderRefusesTheRestByName() throws {
        try withTemporaryDirectory("floor-max") { dir in
            let (store, paths) = try store(in: dir)
            let items = try store.purge(exactly: Array(paths[..<4]), floors: floors(max: 1))
            #expect(items.filter { !$0.keep }.map(\.artifact.path) == [store.root + "/" + paths[0]])
            let refused = items.filter { $0.reasons == ["beyond floor_max_per_order (1 per order)"] }
            #expect(refused.map(\.artifact.path) == paths[1..<4].map { store.root + "/" + $0 })
        }
    }

    @Test func aCopyAReaderHoldsOpenIsSkipped() throws {
        try withTemporaryDirectory("floor-open") { dir in
            let (store, paths) = try store(in: dir)
            let reader = try FileDescriptor.openForSharedReading(store.root + "/" + paths[0])
            let items = try store.purge(exactly: Array(paths[..<2]), floors: floors())
            #expect(
                items.first { $0.artifact.path.hasSuffix(paths[0]) }?.reasons[0].hasPrefix("open by the data port")
                    == true)
            #expect(items.first { $0.artifact.path.hasSuffix(paths[1]) }?.keep == false)
            try reader.close()
            // Once the reader is gone the copy goes. (A process forked elsewhere in this test run
            // shares the lock until it execs, a moment under load: the purge is tried again.)
            var again = try store.purge(exactly: [paths[0]], floors: floors())
            for _ in 0..<50 where again.map(\.keep) != [false] {
                usleep(100_000)
                again = try store.purge(exactly: [paths[0]], floors: floors())
            }
            #expect(again.map(\.keep) == [false], "\(again.map(\.reasons))")
        }
    }

    @Test func whatGoesWaitsInTheTrashAndComesBackOrIsFreed() throws {
        try withTemporaryDirectory("trash") { dir in
            let (store, paths) = try store(in: dir)
            let before = try store.scan().artifacts.count
            // Receipts beside them go and come back with them; a listing never counts them.
            for path in paths[..<3] { try Store.writeReceipt("receipt of \(path)", beside: store.root + "/" + path) }
            #expect(try store.scan().artifacts.count == before)
            _ = try store.purge(exactly: Array(paths[..<3]), floors: floors())
            #expect(try store.scan().artifacts.count == before - 3)
            #expect(try Store.receipt(beside: store.root + "/" + paths[0]) == nil)
            let trashed = try store.trashEntries()
            #expect(Set(trashed.map(\.path)) == Set(paths[..<3]))
            #expect(try store.trashBytes() > trashed.map(\.size).reduce(0, +))  // with the sidecars
            // Restored: back in place with its sidecar, and it verifies.
            let restored = try store.restoreFromTrash(paths[1])
            #expect(store.verify(restored).status == .intact)
            #expect(try Store.receipt(beside: restored.path) == "receipt of \(paths[1])")
            #expect(try store.scan().artifacts.count == before - 2)
            // A path that leaves the layout is refused before the trash is looked at.
            let escape = #expect(throws: BackupError.self) { try store.restoreFromTrash("../" + paths[0]) }
            #expect(escape?.message.contains("is not a store-relative artifact path") == true)
            let again = #expect(throws: BackupError.self) { try store.restoreFromTrash(paths[1]) }
            #expect(again?.message.contains("holds no") == true)
            // Emptying frees only what is old enough, then the rest.
            #expect(try store.emptyTrash(olderThan: 3600).isEmpty)
            #expect(try store.emptyTrash(olderThan: 3600, now: Date().addingTimeInterval(7200)).count == 2)
            #expect(try store.trashEntries().isEmpty && store.trashBytes() == 0)
            // trash_hours = 0: freed at once.
            _ = try store.purge(exactly: [paths[1]], floors: floors(trash: 0))
            #expect(try store.trashEntries().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: store.root + "/" + paths[1] + Store.receiptSuffix))
        }
    }
}

extension PurgeFloorTests {
    @Test func aQuarantinedMutantIsRemovedOnlyOnceItsArtifactIsIntactAgain() throws {
        try withTemporaryDirectory("quarantine") { dir in
            let (store, paths) = try store(in: dir)
            let live = store.root + "/" + paths[1]
            let original = try Data(contentsOf: URL(fileURLWithPath: live))
            // It rots and is set aside, as a verify does.
            var rotten = original
            rotten[rotten.count / 2] ^= 0xff
            try rotten.write(to: URL(fileURLWithPath: live))
            let artifact = try #require(try store.scan().artifacts.first { $0.path == live })
            let moved = try store.quarantine(artifact)
            let entries = try store.quarantineEntries()
            #expect(entries.map(\.artifactPath) == [paths[1]])
            #expect(entries.first.map { store.root + "/" + $0.path } == moved)
            #expect(try store.quarantineBytes() > 0)
            // Not repaired yet: refused by name, kept.
            let refused = #expect(throws: BackupError.self) { try store.removeQuarantined(entries[0].path) }
            #expect(refused?.message.contains("not here intact again") == true)
            #expect(FileManager.default.fileExists(atPath: moved))
            // Repaired (the good bytes back, with the sidecar the quarantine took): removed.
            try original.write(to: URL(fileURLWithPath: live))
            try FileManager.default.copyItem(atPath: moved + ".dna", toPath: live + ".dna")
            try store.removeQuarantined(entries[0].path)
            #expect(try store.quarantineEntries().isEmpty && store.quarantineBytes() == 0)
            // A path outside the quarantine is refused.
            #expect(throws: BackupError.self) { try store.removeQuarantined(paths[0]) }
            #expect(throws: BackupError.self) { try store.removeQuarantined(".quarantine/../" + paths[0]) }
        }
    }
}

extension PurgeFloorTests {
    @Test func aPurgeKilledBetweenItsTwoMovesIsFinishedByTheRetry() throws {
        try withTemporaryDirectory("purge-retry") { dir in
            let (store, paths) = try store(in: dir)
            // The first attempt moved the artifact to the trash and died before its sidecar.
            let live = store.root + "/" + paths[0]
            let batch = store.trashRoot + "/20270101T000000Z/" + paths[0]
            try FileManager.default.createDirectory(
                atPath: (batch as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: live, toPath: batch)
            #expect(FileManager.default.fileExists(atPath: live + ".dna"))
            let items = try store.purge(exactly: [paths[0]], floors: floors())
            #expect(items.map(\.reasons) == [["already gone"]] && items.map(\.keep) == [false])
            #expect(!FileManager.default.fileExists(atPath: live + ".dna"), "the lone sidecar followed")
            #expect(!FileManager.default.fileExists(atPath: (live as NSString).deletingLastPathComponent))
            #expect(try store.scan().artifacts.count == 4)
        }
    }
}
