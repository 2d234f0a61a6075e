import BackupCore
import BackupProtocol
import Foundation
import Logging

/// A backup task: the pre-backup step the agent defines, the snapshot (a Trac environment with
/// its svn repository under one freeze), publication, and the check that the source did not
/// move meanwhile.
extension TaskRunner {
    static func backup(
        _ definition: SourceDefinition, _ configuration: AgentConfiguration, _ progress: ProgressBox,
        _ logger: Logger
    ) throws -> TaskOutcome {
        var spec = try configuration.spec(definition)
        let store = try configuration.store()
        if let step = spec.preBackup {
            progress.set("pre-backup step \(step.name)")
            try runStep(step, source: definition.name, logger)
            spec.preBackup = nil
        }
        progress.set("archiving \(definition.name)")
        var published: [PublishedArtifact]
        var specs = [spec]
        if let svn = definition.svnSource {
            let svnSpec = try configuration.spec(SourceDefinition(name: svn.name, kind: .svn, path: svn.path))
            specs.append(svnSpec)
            let pair = try store.backupPair(svn: svnSpec, trac: spec, node: configuration.node)
            published = [pair.trac, pair.svn]
        } else {
            published = [try store.backup(spec, node: configuration.node)]
        }
        // Checked again after the snapshot: a link swapped in meanwhile fails the backup.
        for checked in specs {
            let again = try configuration.spec(
                SourceDefinition(name: checked.name, kind: checked.kind, path: checked.path))
            guard again.path == checked.path else {
                throw BackupError(
                    .refused,
                    "Source '\(checked.name)' moved to '\(again.path)' while it was archived from '\(checked.path)'; the backup is refused."
                )
            }
        }
        let now = Date()
        let copies = published.map { p in
            // Each was read back against its digests before it was published.
            copyReport(p.location, size: p.dna.size, dna: p.dna, state: .intact, verifiedAt: now)
        }
        let summary = published.map {
            "\($0.location.source) revision \($0.dna.revision ?? "-") as \($0.location.relativePath) (\($0.dna.size) bytes)"
                + ($0.warnings.isEmpty ? "" : " [\($0.warnings.joined(separator: "; "))]")
        }
        return TaskOutcome(
            detail: "backed up " + summary.joined(separator: " and "),
            artifacts: ArtifactReport(complete: false, copies: copies))
    }
}

extension TaskRunner {
    /// An artifact of `definition` in this agent's store made since `since` (the moment the
    /// task was queued, on this agent's clock), as the outcome of the task: a backup whose
    /// artifact was published but whose result was never journalled (the agent died in
    /// between) is reported when the task comes back, instead of being made twice (issue 11,
    /// V2). Only an artifact that no journalled result names counts: one an earlier task
    /// reported is that task's, however recent. Nil when there is none, for a Trac environment
    /// with its repository (two artifacts), and when a sidecar cannot be read (then the backup
    /// is made).
    static func madeSince(
        _ definition: SourceDefinition, since: Date, configuration: AgentConfiguration, journal: ResultJournal,
        logger: Logger
    ) -> TaskOutcome? {
        guard definition.svnSource == nil else { return nil }
        do {
            let store = try configuration.store()
            let folder = "\(store.root)/\(configuration.node)/\(definition.kind.rawValue)/\(definition.name)"
            guard try FileSystem.linkStatus(folder) != nil else { return nil }
            // Stamps are UTC creation times: only folders from `since` on are read.
            let earliest = ArtifactLocation.stamp(for: since.addingTimeInterval(-1))
            var candidates: [(location: ArtifactLocation, dna: DNA, created: Date)] = []
            for artifact in try store.scan([folder]).artifacts where artifact.hasSidecar {
                guard let location = artifact.location, location.stamp >= earliest else { continue }
                let dna = try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
                guard let created = dna.created, created >= since, dna.size == artifact.size else { continue }
                candidates.append((location, dna, created))
            }
            guard !candidates.isEmpty else { return nil }
            // One that a journalled result names was reported (by an earlier task): not this one's.
            let reported = Set(try journal.tasks().flatMap { $0.result.artifacts?.copies.map(\.path) ?? [] })
            guard
                let (location, dna, _) = candidates.filter({ !reported.contains($0.location.relativePath) })
                    .max(by: { $0.created < $1.created })
            else { return nil }
            let copy = copyReport(location, size: dna.size, dna: dna, state: .intact, verifiedAt: Date())
            return TaskOutcome(
                detail:
                    "\(location.relativePath) (\(dna.size) bytes) was made after this task was queued and never reported (its agent stopped before the result was journalled); reported instead of backing up again",
                artifacts: ArtifactReport(complete: false, copies: [copy]))
        } catch {
            logger.warning(
                "the store cannot be searched for a backup made before; it is made again",
                metadata: ["scm.source": "\(definition.name)", "scm.error": "\(error)"])
            return nil
        }
    }
}
