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
    /// as a coordinator's purge task orders, within this store's own floor: the newest artifact
    /// of a source that verifies against its DNA is never deleted, whatever the order says.
    /// A path that is not a clean store-relative artifact path is refused before anything is
    /// deleted; one already gone counts as deleted. `last` is moved when its stamp goes.
    ///
    /// With `expected` (a signed order's size and digest per path), each copy is hashed first:
    /// one whose bytes are not what the order names is quarantined, never deleted (it may be
    /// the only trace of what went wrong), and reported with `quarantined` set.
    public func purge(exactly relativePaths: [String], expected: [String: ArtifactDigests]? = nil) throws
        -> [PurgeItem]
    {
        var targets: [(String, ArtifactLocation)] = []
        for relative in relativePaths {
            let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard !relative.hasPrefix("/"), !components.contains(".."), !components.contains("."),
                !components.contains(""), let location = ArtifactLocation(relativeComponents: components)
            else {
                throw BackupError(
                    .refused,
                    "Purge order names '\(relative)', which is not a store-relative artifact path (<origin>/<kind>/<source>/YYYY/MM/DD/HHMMSS/<file>.tar.gz); nothing was deleted."
                )
            }
            targets.append((relative, location))
        }
        var items: [PurgeItem] = []
        let bySource = Dictionary(grouping: targets, by: { $0.1.sourceFolder })
        for folder in bySource.keys.sorted() {
            let sourceFolder = root + "/" + folder
            let present = try FileSystem.linkStatus(sourceFolder) == nil ? [] : try scan([sourceFolder]).artifacts
            // The floor: the newest artifact that verifies stays.
            let newestIntact = present.filter { $0.location != nil }.sorted { $0.location!.stamp > $1.location!.stamp }
                .first { verify($0).status == .intact }
            var deletedStamps = false
            for (relative, _) in bySource[folder]! {
                let path = root + "/" + relative
                guard let artifact = present.first(where: { $0.path == path }) else {
                    items.append(
                        PurgeItem(
                            artifact: StoredArtifact(path: path, location: nil, size: 0, hasSidecar: false),
                            keep: false, reasons: ["already gone"]))
                    continue
                }
                if artifact.path == newestIntact?.path {
                    items.append(PurgeItem(artifact: artifact, keep: true, reasons: ["newest verified"]))
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
                try delete(artifact, sourceFolder: sourceFolder)
                deletedStamps = true
                items.append(PurgeItem(artifact: artifact, keep: false, reasons: ["named by the purge order"]))
            }
            if deletedStamps, let remaining = try scan([sourceFolder]).artifacts.compactMap(\.location?.stamp).max() {
                try repairLastLink(sourceFolder, newest: remaining)
            }
        }
        return items
    }

    /// After deletions: a `last` link that is missing, not a link, or dangling is pointed at
    /// `newest`; a good one is left alone.
    private func repairLastLink(_ sourceFolder: String, newest: String) throws {
        // readlink fails when `last` is missing or not a link: both mean it is reset.
        let current = try? FileManager.default.destinationOfSymbolicLink(atPath: sourceFolder + "/last")
        if try current == nil || FileSystem.linkStatus(sourceFolder + "/" + current!) == nil {
            _ = try updateLastLink(sourceFolder, to: newest)
        }
    }

    /// Deletes an artifact and its sidecar, then its emptied stamp and date folders.
    private func delete(_ artifact: StoredArtifact, sourceFolder: String) throws {
        guard unlink(artifact.path) == 0 || errno == ENOENT else {
            throw BackupError.posix("delete", path: artifact.path, errno: errno)
        }
        guard unlink(artifact.sidecarPath) == 0 || errno == ENOENT else {
            throw BackupError.posix("delete", path: artifact.sidecarPath, errno: errno)
        }
        var folder = (artifact.path as NSString).deletingLastPathComponent
        while folder.hasPrefix(sourceFolder + "/"), rmdir(folder) == 0 {
            folder = (folder as NSString).deletingLastPathComponent
        }
        try FileSystem.syncDirectory(folder)
    }
}
