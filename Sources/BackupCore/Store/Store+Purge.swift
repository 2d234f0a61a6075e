import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What purge decided, or did, for one artifact.
public struct PurgeItem: Sendable {
    public var artifact: StoredArtifact
    public var keep: Bool
    /// Why it is kept (policy slots, "newest verified", "regression"), or why it goes.
    public var reasons: [String]
    /// Where it was quarantined instead of deleted, when its bytes were not the order's.
    public var quarantined: String?

    public init(artifact: StoredArtifact, keep: Bool, reasons: [String], quarantined: String? = nil) {
        self.artifact = artifact
        self.keep = keep
        self.reasons = reasons
        self.quarantined = quarantined
    }
}

extension Store {
    /// Applies `policy` to every source of the store (or the sources named `source`).
    ///
    /// Nothing is deleted unless `apply` is true. Whatever the policy says, the newest good
    /// artifact that verifies against its DNA is kept: the newest ones are verified in turn
    /// until one is intact. Artifacts flagged as regressions, and artifacts outside the layout
    /// or with unreadable sidecars, are never deleted. Emptied date folders are removed and
    /// `last` is moved when its stamp goes.
    public func purge(_ policy: RetentionPolicy, source: String? = nil, apply: Bool) throws -> [PurgeItem] {
        let scan = try self.scan()
        var groups: [String: [StoredArtifact]] = [:]
        var items: [PurgeItem] = []
        for artifact in scan.artifacts {
            guard let loc = artifact.location else {
                items.append(PurgeItem(artifact: artifact, keep: true, reasons: ["outside the store layout"]))
                continue
            }
            if let source, loc.source != source { continue }
            groups[loc.sourceFolder, default: []].append(artifact)
        }
        for folder in groups.keys.sorted() {
            items += try purgeSource(groups[folder]!, folder: root + "/" + folder, policy: policy, apply: apply)
        }
        return items
    }

    private func purgeSource(_ artifacts: [StoredArtifact], folder: String, policy: RetentionPolicy, apply: Bool) throws
        -> [PurgeItem]
    {
        var candidates: [RetentionPolicy.Candidate] = []
        var byPath: [String: StoredArtifact] = [:]
        var unreadable: [PurgeItem] = []
        for artifact in artifacts {
            byPath[artifact.path] = artifact
            var dna: DNA?
            if artifact.hasSidecar {
                do {
                    dna = try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
                } catch {
                    unreadable.append(
                        PurgeItem(artifact: artifact, keep: true, reasons: ["sidecar unreadable: \(error)"]))
                    continue
                }
            }
            guard let created = dna?.created ?? artifact.location?.stampDate else { continue }
            // Subversion revisions only grow: they order artifacts whatever the origin's clock said.
            let isSvn = artifact.location.flatMap { SourceKind(storeName: $0.kind) } == .svn
            let revision = isSvn ? (dna?.revision ?? artifact.location?.revision).flatMap { Int($0) } : nil
            candidates.append(
                .init(
                    id: artifact.path, created: created, isRegression: !(dna?.regressions ?? []).isEmpty,
                    revision: revision))
        }
        var decisions = policy.decide(candidates)
        // The newest good artifact that verifies is kept whatever the policy says.
        for (i, decision) in decisions.enumerated()
        where !candidates.first(where: { $0.id == decision.id })!.isRegression {
            let artifact = byPath[decision.id]!
            if verify(artifact).status == .intact {
                decisions[i].keep = true
                decisions[i].reasons.append("newest verified")
                break
            }
            decisions[i].reasons.append("does not verify")
        }
        var items = unreadable
        for decision in decisions {
            let artifact = byPath[decision.id]!
            let reasons = decision.keep ? decision.reasons : ["not kept by the policy"]
            items.append(PurgeItem(artifact: artifact, keep: decision.keep, reasons: reasons))
            if apply && !decision.keep { try delete(artifact, sourceFolder: folder) }
        }
        if apply, items.contains(where: { !$0.keep }),
            let newest = items.filter(\.keep).compactMap(\.artifact.location).map(\.stamp).max()
        {
            try repairLastLink(folder, newest: newest)
        }
        return items
    }

    /// Deletes exactly the artifacts named by `relativePaths` (store-relative, in the layout),
    /// as a coordinator's purge order names them, within this store's own `floors` whatever
    /// the order says: the newest `floors.keep` artifacts of a source that verify against their
    /// DNA stay, nothing younger than `floors.minAge` (by its DNA's creation time) goes, at most
    /// `floors.maxPerOrder` go per order, and a file a reader holds open (the data port serving
    /// it, a transfer sending it: ``FileDescriptor/openForSharedReading(_:)``) is skipped. Each
    /// kept copy says why. A path that is not a clean store-relative artifact path is refused
    /// before anything is deleted; one already gone counts as deleted. `last` is moved when its
    /// stamp goes. What goes is moved to the trash (``trashFolder``) for `floors.trashHours`
    /// before its bytes are freed (``emptyTrash(olderThan:now:)``), or unlinked when that is 0.
    ///
    /// With `expected` (a signed order's size and digest per path), each copy is hashed first:
    /// one whose bytes are not what the order names is quarantined, never deleted (it may be
    /// the only trace of what went wrong), and reported with `quarantined` set.
    public func purge(
        exactly relativePaths: [String], expected: [String: ArtifactDigests]? = nil,
        floors: PurgeFloors = PurgeFloors(),
        now: Date = Date()
    ) throws -> [PurgeItem] {
        var targets: [(String, ArtifactLocation)] = []
        for relative in relativePaths {
            let location: ArtifactLocation
            do { location = try Self.location(ofRelative: relative) } catch let error as BackupError {
                throw BackupError(.refused, "Purge order refused: \(error.message.dropLast()); nothing was deleted.")
            }
            targets.append((relative, location))
        }
        var items: [PurgeItem] = []
        let limit = max(1, floors.maxPerOrder)
        if targets.count > limit {
            for (relative, location) in targets[limit...] {
                items.append(
                    PurgeItem(
                        artifact: StoredArtifact(
                            path: root + "/" + relative, location: location, size: 0, hasSidecar: false),
                        keep: true, reasons: ["beyond floor_max_per_order (\(limit) per order)"]))
            }
            targets = Array(targets[..<limit])
        }
        let trash = floors.trashHours > 0 ? trashFolder(deletedAt: now) : nil
        let bySource = Dictionary(grouping: targets, by: { $0.1.sourceFolder })
        for folder in bySource.keys.sorted() {
            let sourceFolder = root + "/" + folder
            let present = try FileSystem.linkStatus(sourceFolder) == nil ? [] : try scan([sourceFolder]).artifacts
            // floor_keep: the newest that verify stay, however many older ones must be read to find them.
            var protected: Set<String> = []
            for artifact in present.filter({ $0.location != nil }).sorted(by: {
                $0.location!.stamp > $1.location!.stamp
            })
            where protected.count < max(1, floors.keep) && verify(artifact).status == .intact {
                protected.insert(artifact.path)
            }
            var deletedStamps = false
            for (relative, location) in bySource[folder]! {
                let path = root + "/" + relative
                guard let artifact = present.first(where: { $0.path == path }) else {
                    // A purge killed between its moves left the sidecar or the receipt: they follow now.
                    let dna = try FileSystem.linkStatus(path + ".dna") != nil
                    if try dna || FileSystem.linkStatus(path + Self.receiptSuffix) != nil {
                        try discard(
                            StoredArtifact(path: path, location: location, size: 0, hasSidecar: dna),
                            relative: relative,
                            sourceFolder: sourceFolder, trash: trash, sidecarOnly: true)
                        deletedStamps = true
                    }
                    items.append(
                        PurgeItem(
                            artifact: StoredArtifact(path: path, location: nil, size: 0, hasSidecar: false),
                            keep: false, reasons: ["already gone"]))
                    continue
                }
                if protected.contains(artifact.path) {
                    let why =
                        floors.keep > 1 ? "floor_keep: one of the newest \(floors.keep) that verify" : "newest verified"
                    items.append(PurgeItem(artifact: artifact, keep: true, reasons: [why]))
                    continue
                }
                let created = madeAt(artifact) ?? location.stampDate
                if let created, now.timeIntervalSince(created) < floors.minAge {
                    items.append(
                        PurgeItem(
                            artifact: artifact, keep: true,
                            reasons: [
                                "younger than floor_min_age (\(RetentionPolicy.describe(floors.minAge))): made \(created.formatted(.iso8601))"
                            ]))
                    continue
                }
                if let expected {
                    guard let wanted = expected[relative] else {
                        items.append(PurgeItem(artifact: artifact, keep: true, reasons: ["not in the signed order"]))
                        continue
                    }
                    let actual = try Store.digest(artifact.path, wanted.sha256 != nil ? .sha256 : .md5)
                    let differs =
                        actual.size != wanted.size
                        || (wanted.sha256 != nil ? actual.sha256 != wanted.sha256 : actual.md5 != wanted.md5)
                    if differs {
                        let moved = try quarantine(artifact)
                        var item = PurgeItem(
                            artifact: artifact, keep: true,
                            reasons: [
                                "its bytes (\(actual.size) bytes, \(actual.sha256 ?? actual.md5 ?? "-")) are not the order's; quarantined as \(moved)"
                            ])
                        item.quarantined = moved
                        items.append(item)
                        deletedStamps = true
                        continue
                    }
                }
                // The exclusive lock, held while it moves: a reader holding it shared keeps it here.
                let fd = try FileDescriptor.openForReading(artifact.path)
                defer { fd.closeAfterError() }
                guard try fd.tryLockExclusive() else {
                    items.append(
                        PurgeItem(
                            artifact: artifact, keep: true,
                            reasons: ["open by the data port or a transfer (a reader holds it): skipped"]))
                    continue
                }
                try discard(artifact, relative: relative, sourceFolder: sourceFolder, trash: trash)
                deletedStamps = true
                items.append(
                    PurgeItem(
                        artifact: artifact, keep: false,
                        reasons: [trash == nil ? "named by the purge order" : "named by the purge order; in the trash"])
                )
            }
            if deletedStamps, let remaining = try scan([sourceFolder]).artifacts.compactMap(\.location?.stamp).max() {
                try repairLastLink(sourceFolder, newest: remaining)
            }
        }
        return items
    }

    /// When `artifact` was made, by its DNA; nil without a sidecar or with one that does not
    /// decode (the caller falls back to its stamp, so the age floor still holds: a damaged
    /// sidecar is a verify's finding, not a reason to keep or delete).
    private func madeAt(_ artifact: StoredArtifact) -> Date? {
        guard artifact.hasSidecar else { return nil }
        do {
            return try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
                .created
        } catch {
            return nil
        }
    }

    /// After deletions: a `last` link that is missing, not a link, or dangling is pointed at
    /// `newest`; a good one is left alone.
    func repairLastLink(_ sourceFolder: String, newest: String) throws {
        // readlink fails when `last` is missing or not a link: both mean it is reset.
        let current = try? FileManager.default.destinationOfSymbolicLink(atPath: sourceFolder + "/last")
        if try current == nil || FileSystem.linkStatus(sourceFolder + "/" + current!) == nil {
            _ = try updateLastLink(sourceFolder, to: newest)
        }
    }

    /// Moves an artifact and its sidecar into `trash` (keeping its store-relative path), or
    /// deletes them when `trash` is nil; then removes its emptied stamp and date folders.
    /// The artifact goes first, its sidecar second (as ``delete(_:sourceFolder:)`` does): a
    /// purge killed between the two leaves a sidecar alone, which the order's retry moves
    /// (`sidecarOnly`), never an artifact without its DNA.
    private func discard(
        _ artifact: StoredArtifact, relative: String, sourceFolder: String, trash: String?, sidecarOnly: Bool = false
    ) throws {
        guard let trash else { return try delete(artifact, sourceFolder: sourceFolder) }
        let target = trash + "/" + relative
        let folder = (target as NSString).deletingLastPathComponent
        try FileSystem.makeDirectories(folder)
        if !sidecarOnly { try FileSystem.rename(artifact.path, to: target) }
        if artifact.hasSidecar { try FileSystem.rename(artifact.sidecarPath, to: target + ".dna") }
        try Self.moveReceipt(beside: artifact.path, to: target)
        try FileSystem.syncDirectory(folder)
        var emptied = (artifact.path as NSString).deletingLastPathComponent
        try FileSystem.syncDirectory(emptied)
        while emptied.hasPrefix(sourceFolder + "/"), rmdir(emptied) == 0 {
            emptied = (emptied as NSString).deletingLastPathComponent
        }
        try FileSystem.syncDirectory(emptied)
    }

    /// Deletes an artifact and its sidecar, then its emptied stamp and date folders.
    private func delete(_ artifact: StoredArtifact, sourceFolder: String) throws {
        guard unlink(artifact.path) == 0 || errno == ENOENT else {
            throw BackupError.posix("delete", path: artifact.path, errno: errno)
        }
        guard unlink(artifact.sidecarPath) == 0 || errno == ENOENT else {
            throw BackupError.posix("delete", path: artifact.sidecarPath, errno: errno)
        }
        try Self.deleteReceipt(beside: artifact.path)
        var folder = (artifact.path as NSString).deletingLastPathComponent
        while folder.hasPrefix(sourceFolder + "/"), rmdir(folder) == 0 {
            folder = (folder as NSString).deletingLastPathComponent
        }
        try FileSystem.syncDirectory(folder)
    }
}
