import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// A store on a full file system: the backup fails naming the disk-full condition and leaves
/// no partial and no final name; what was stored before stays intact.
@Suite(.serialized)
struct DiskFullTests {
    @Test func aFullStoreFailsCleanlyAndHarmsNothingStored() async throws {
        try await blocking {
            try withTemporaryDirectory("diskfull") { dir in
                let mountPoint = dir.file("small")
                try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
                let mount = try Command.run("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mountPoint])
                try #require(mount.status == 0, "the test needs to mount a 1 MiB tmpfs (run as root): \(mount.stderr)")
                // Unmount even when an expectation failed; a mount left over would die with the machine.
                defer { _ = try? Command.run("umount", [mountPoint]) }

                // A small source that fits, then an incompressible one that does not.
                try FileManager.default.createDirectory(
                    atPath: dir.file("small-src"), withIntermediateDirectories: true)
                try "tiny\n".write(toFile: dir.file("small-src/a.txt"), atomically: false, encoding: .utf8)
                var rng = SeededGenerator(seed: 7)
                try FileManager.default.createDirectory(atPath: dir.file("big-src"), withIntermediateDirectories: true)
                let noise = Data(rng.bytes(3_000_000))
                try noise.write(to: URL(fileURLWithPath: dir.file("big-src/noise.bin")))

                let store = try Store.openForWriting(mountPoint + "/store")
                let kept = try store.backupFolder(dir.file("small-src"), node: "n", name: "small")
                let error = #expect(throws: BackupError.self) {
                    try store.backupFolder(dir.file("big-src"), node: "n", name: "big")
                }
                #expect(error?.code == .diskFull)
                #expect(error?.message.contains("the file system is full") == true)
                #expect(error?.message.contains(mountPoint) == true, "names the path: \(error?.message ?? "")")

                let scan = try store.scan()
                #expect(scan.artifacts.map(\.path) == [kept.path])
                #expect(scan.partials.isEmpty)
                #expect(scan.orphanSidecars.isEmpty)
                #expect(store.verify(scan.artifacts[0], deep: true).status == .intact)
                // The failed backup leaves no stamp folder behind either.
                #expect(try FileSystem.entries(of: mountPoint + "/store/n/folder/big").isEmpty)
            }
        }
    }
}
