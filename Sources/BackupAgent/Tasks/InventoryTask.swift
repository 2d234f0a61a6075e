import BackupCore
import BackupProtocol
import Foundation
import Logging

/// An inventory task: every copy of the store with what its sidecar says, for the catalog.
extension TaskRunner {
    static func inventory(_ configuration: AgentConfiguration, _ progress: ProgressBox) throws -> TaskOutcome {
        let store = try storeForReading(configuration)
        progress.set("listing the store")
        let scan = try store.scan()
        var copies: [CopyReport] = []
        for artifact in scan.artifacts {
            guard let location = artifact.location else { continue }
            var dna: DNA?
            var problem: String?
            if artifact.hasSidecar {
                // A sidecar that cannot be used is listed without digests, with the reason.
                do {
                    dna = try DNA.decode(
                        try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
                } catch {
                    problem = "\(error)"
                }
            } else {
                problem = "no sidecar"
            }
            copies.append(
                copyReport(location, size: artifact.size, dna: dna, state: .unverified, problem: problem))
        }
        let bytes = scan.artifacts.reduce(Int64(0)) { $0 + $1.size }
        return TaskOutcome(
            detail: "\(scan.artifacts.count) artifacts, \(bytes) bytes, \(scan.partials.count) partials",
            artifacts: ArtifactReport(complete: true, copies: copies, quarantine: try store.quarantineEntries()))
    }
}
