import BackupCore
import BackupProtocol
import Crypto
import Foundation
import Logging
import ServiceLifecycle

/// Where and how often the hub writes its self-backup (`self_backup`, `self_backup_every`,
/// `self_backup_keep` in `[coordinator]`).
public struct SelfBackupSettings: Sendable, Equatable {
    /// The folder the snapshots go into; the hub node's agent backs it up as a `folder` source.
    public var folder: String
    /// At least this often, and after every run. The default is one hour.
    public var everySeconds: Double = 3600
    /// How many snapshots stay in the folder (the newest). The default is 2.
    public var keep = 2

    public init(folder: String) { self.folder = folder }
}

/// The hub's self-backup: a consistent snapshot of its catalog (SQLite's online backup, taken
/// inside one read transaction), its site file and its public keys (the site CA, the ticket and
/// purge keys' public halves, the revocation list), in a folder of its own
/// `<folder>/<YYYYMMDDTHHMMSSZ>/` with a `MANIFEST.json` of sizes and digests written last.
/// A snapshot is built as `.<name>.partial` and renamed whole; older ones beyond `keep` are
/// removed. Private keys never go in (`scm-backup pki export-hub` puts them in an operator's
/// safe). Folders are 0750 and files 0640, so the agent's group may read them when the folder
/// belongs to that group (setgid). See `Protocol/hub.md`.
public struct SelfBackup: Sendable {
    let settings: SelfBackupSettings
    let configuration: CoordinatorConfiguration
    let catalog: Catalog
    let wallClock: any WallClock
    let logger: Logger

    /// Takes one snapshot now; returns its folder and manifest.
    @discardableResult
    public func write() async throws -> (folder: String, manifest: HubSnapshotManifest) {
        let now = wallClock.currentDate
        let root = settings.folder
        let stamp = HubSnapshotManifest.folderName(now)
        var partial = root + "/." + stamp + ".partial"
        var files: [HubSnapshotManifest.File] = []
        func add(_ relative: String) throws {
            let path = partial + "/" + relative
            guard chmod(path, 0o640) == 0 else { throw BackupError.posix("chmod", path: path, errno: errno) }
            let digests = try Store.digest(path, .sha256)
            files.append(.init(name: relative, size: digests.size, sha256: digests.sha256 ?? ""))
        }
        do {
            try makeFolder(root)
            // Two in one second (a run that ends as the hub starts) get `-1`, `-2`: names sort by age.
            var name = stamp
            var n = 0
            while try FileSystem.linkStatus(root + "/" + name) != nil {
                n += 1
                name = "\(stamp)-\(n)"
            }
            let final = root + "/" + name
            partial = root + "/." + name + ".partial"
            // A crashed writer's leftover is ours to replace.
            if try FileSystem.linkStatus(partial) != nil { try FileManager.default.removeItem(atPath: partial) }
            try makeFolder(partial)
            try makeFolder(partial + "/keys")
            try await catalog.snapshot(to: partial + "/catalog.sqlite")
            try add("catalog.sqlite")
            if let site = configuration.siteFile {
                try FileSystem.writeAtomically(
                    try FileSystem.readSmallFile(site, limit: 16 << 20), to: partial + "/site.toml")
                try add("site.toml")
            }
            var keys: [(String, [UInt8])] = [("keys/ca.pem", try FileSystem.readSmallFile(configuration.caCertificate))]
            if let path = configuration.ticketKey {
                keys.append(
                    (
                        "keys/ticket-signing.pub",
                        Array(Ed25519PEM.publicKey(try Ed25519PEM.readPrivateKey(path).publicKey).utf8)
                    ))
            }
            if let path = configuration.purgeKey {
                keys.append(
                    (
                        "keys/purge-signing.pub",
                        Array(Ed25519PEM.publicKey(try Ed25519PEM.readPrivateKey(path).publicKey).utf8)
                    ))
            }
            if let path = configuration.revocationList, try FileSystem.linkStatus(path) != nil {
                keys.append(("keys/revoked.json", try FileSystem.readSmallFile(path, limit: 16 << 20)))
            }
            for (relative, bytes) in keys {
                try FileSystem.writeAtomically(bytes, to: partial + "/" + relative)
                try add(relative)
            }
            let coordinator = try PeerIdentity(certificate: try PEMFiles.certificate(configuration.certificate)).name
            let manifest = HubSnapshotManifest(
                epoch: try await catalog.epoch(), coordinator: coordinator, takenAt: now, files: files)
            try FileSystem.writeAtomically(
                Array(try WireJSON.encoder().encode(manifest)), to: partial + "/" + HubSnapshotManifest.fileName)
            try add(HubSnapshotManifest.fileName)
            try FileSystem.syncDirectory(partial + "/keys")
            try FileSystem.syncDirectory(partial)
            try FileSystem.rename(partial, to: final)
            try FileSystem.syncDirectory(root)
            try prune()
            logger.info(
                "hub self-backup written",
                metadata: ["scm.folder": "\(final)", "scm.bytes": "\(files.reduce(0) { $0 + $1.size })"])
            return (final, manifest)
        } catch {
            // The error is the one to report; a partial that cannot be removed is named with it.
            let leftover = FileSystem.removeLeftover(partial)
            throw BackupError(
                (error as? BackupError)?.code ?? .io,
                "The hub's self-backup into '\(root)' (self_backup in [coordinator]) failed: \(error)\(leftover)")
        }
    }

    /// The snapshots in the folder, oldest first (only whole ones: a `.partial` is not listed).
    public static func snapshots(in folder: String) throws -> [String] {
        guard try FileSystem.linkStatus(folder) != nil else { return [] }
        return try FileSystem.entries(of: folder).filter { name in
            !name.hasPrefix(".") && name.count >= 16 && name.prefix(16).last == "Z"
        }.sorted()
    }

    private func prune() throws {
        let all = try Self.snapshots(in: settings.folder)
        for old in all.dropLast(settings.keep) {
            try FileManager.default.removeItem(atPath: settings.folder + "/" + old)
        }
    }

    private func makeFolder(_ path: String) throws {
        try FileSystem.makeDirectories(path)
        guard chmod(path, 0o750) == 0 else { throw BackupError.posix("chmod", path: path, errno: errno) }
    }
}

/// Takes the hub's self-backup at least every `self_backup_every` and after every run (the run
/// driver signals ``TaskSignals/selfBackup``); a failure is logged and tried again at the next
/// occasion, never stopping the hub.
struct SelfBackupService: Service {
    let selfBackup: SelfBackup
    let signals: TaskSignals
    let clock: any Clock<Duration>
    let wallClock: any WallClock
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var next = wallClock.currentDate
            var ticket = await signals.ticket(for: TaskSignals.selfBackup)
            while !Task.isCancelled {
                let wait = next.timeIntervalSince(wallClock.currentDate)
                if wait > 0 {
                    await signals.wait(ticket, node: TaskSignals.selfBackup, atMost: wait, clock: clock)
                } else {
                    await signals.finish(ticket, node: TaskSignals.selfBackup)
                }
                // Taken before the snapshot: a run that ends while it is written gets the next one.
                ticket = await signals.ticket(for: TaskSignals.selfBackup)
                if Task.isCancelled { break }
                do {
                    try await selfBackup.write()
                } catch {
                    logger.error("the hub's self-backup failed", metadata: ["scm.error": "\(error)"])
                }
                next = wallClock.currentDate.addingTimeInterval(selfBackup.settings.everySeconds)
            }
            await signals.finish(ticket, node: TaskSignals.selfBackup)
        }
    }
}
