import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// An artifact arriving from another node: resumed from its partial, checked against its DNA,
/// published only when every byte matches; mutants are quarantined, never deleted.
struct ReceiveTests {
    /// An artifact of a 3 MiB random folder in `dir/origin`; returns it with its bytes.
    private func artifact(_ dir: TemporaryDirectory) throws -> (PublishedArtifact, [UInt8]) {
        try FileManager.default.createDirectory(atPath: dir.file("src/data"), withIntermediateDirectories: true)
        var noise = SystemRandomNumberGenerator()
        let bytes = noise.bytes(3 << 20)
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("src/data/blob")))
        let origin = try Store.openForWriting(dir.file("origin"))
        let published = try origin.backupFolder(dir.file("src/data"), node: "cms02", name: "data")
        return (published, Array(try Data(contentsOf: URL(fileURLWithPath: published.path))))
    }

    private func send(_ incoming: IncomingArtifact, _ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { try incoming.append($0) }
    }

    @Test func anInterruptedTransferResumesFromItsPartialToIdenticalBytes() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-resume") { dir in
                let (published, bytes) = try artifact(dir)
                let store = try Store.openForWriting(dir.file("backup"))
                var first: IncomingArtifact? = try IncomingArtifact(
                    store: store, location: published.location, dna: published.dna)
                try send(first!, bytes[0..<1_000_000])
                first = nil  // The connection dies here.
                #expect(try FileSystem.linkStatus(store.path(of: published.location)) == nil)
                let again = try IncomingArtifact(store: store, location: published.location, dna: published.dna)
                #expect(again.resumedFrom == 1_000_000)
                try send(again, bytes[1_000_000...])
                let (done, computed) = try again.finish()
                #expect(computed.sha256 == published.dna.sha256)
                #expect(Array(try Data(contentsOf: URL(fileURLWithPath: done.path))) == bytes)
                #expect(store.verify(try store.scan().artifacts[0]).status == .intact)
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(
                        atPath: dir.file("backup/cms02/folder/data/last")) == published.location.stamp)
                #expect(try FileSystem.linkStatus(done.path + ".partial") == nil)
            }
        }
    }

    @Test func aDamagedPartialOrBodyIsAMutantTransferAndNothingIsPublished() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-mutant") { dir in
                let (published, bytes) = try artifact(dir)
                let store = try Store.openForWriting(dir.file("backup"))
                var damaged = bytes
                damaged[2_000_000] ^= 0x01
                let incoming = try IncomingArtifact(store: store, location: published.location, dna: published.dna)
                try send(incoming, damaged[...])
                let error = #expect(throws: BackupError.self) { try incoming.finish() }
                #expect(error?.code == .archiveCorrupt)
                #expect(error?.message.contains("Mutant transfer of '\(published.location.relativePath)'") == true)
                let final = store.path(of: published.location)
                #expect(try FileSystem.linkStatus(final) == nil)
                #expect(try FileSystem.linkStatus(final + ".dna") == nil)
                #expect(try FileSystem.linkStatus(final + ".partial") == nil)
            }
        }
    }

    @Test func moreBytesThanTheDNASaysAreRefusedAndFewerKeepThePartial() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-length") { dir in
                let (published, bytes) = try artifact(dir)
                let store = try Store.openForWriting(dir.file("backup"))
                let incoming = try IncomingArtifact(store: store, location: published.location, dna: published.dna)
                try send(incoming, bytes[...])
                let longer = #expect(throws: BackupError.self) { try send(incoming, [0x42][...]) }
                #expect(longer?.message.contains("but more arrived") == true)
                let short = try IncomingArtifact(
                    store: store, location: published.location, dna: published.dna, discardPartial: true)
                try send(short, bytes[0..<100])
                let ended = #expect(throws: BackupError.self) { try short.finish() }
                #expect(ended?.code == .archiveTruncated)
                #expect(try FileSystem.linkStatus(store.path(of: published.location) + ".partial")?.st_size == 100)
                #expect(try FileSystem.linkStatus(store.path(of: published.location)) == nil)
            }
        }
    }

    @Test func aPublishedArtifactIsNeverOverwrittenAndBadPathsAreRefused() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-refusals") { dir in
                let (published, _) = try artifact(dir)
                let origin = Store(root: dir.file("origin"))
                let exists = #expect(throws: BackupError.self) {
                    try IncomingArtifact(store: origin, location: published.location, dna: published.dna)
                }
                #expect(exists?.message.contains("already exists") == true)
                for bad in [
                    "../etc/x.tar.gz", "/cms02/folder/data/2026/11/27/091302/data-1.tar.gz",
                    "cms02/folder/data/2026/11/27/091302/../../x.tar.gz", "cms02/folder/data/last/x.tar.gz",
                    "cms02//folder/data/2026/11/27/091302/data-1.tar.gz",
                ] {
                    #expect(throws: BackupError.self, "\(bad)") { try origin.location(ofRelative: bad) }
                }
                #expect(try origin.location(ofRelative: published.location.relativePath) == published.location)
            }
        }
    }

    @Test func whatAStoreHoldsUnderAnArtifactsNameIsKnownWithoutGuessing() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-held") { dir in
                let (published, _) = try artifact(dir)
                let origin = Store(root: dir.file("origin"))
                #expect(try origin.held(published.location) == .digest(published.dna.sha256!))
                try "{not json".write(toFile: published.path + ".dna", atomically: true, encoding: .utf8)
                #expect(try origin.held(published.location) == .unknownDigest)
                try FileManager.default.removeItem(atPath: published.path + ".dna")
                #expect(try origin.held(published.location) == .unknownDigest)
                try FileManager.default.removeItem(atPath: published.path)
                #expect(try origin.held(published.location) == .absent)
            }
        }
    }

    @Test func aMutantIsQuarantinedWithItsSidecarNotDeleted() async throws {
        try await blocking {
            try withTemporaryDirectory("receive-quarantine") { dir in
                let (published, _) = try artifact(dir)
                let origin = Store(root: dir.file("origin"))
                let artifact = try origin.scan().artifacts[0]
                let moved = try origin.quarantine(artifact)
                #expect(moved == dir.file("origin/.quarantine/" + published.location.relativePath))
                #expect(try FileSystem.linkStatus(moved) != nil && FileSystem.linkStatus(moved + ".dna") != nil)
                #expect(try origin.scan().artifacts.isEmpty, "listings ignore the quarantine")
            }
        }
    }
}
