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
