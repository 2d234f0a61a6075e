import BackupCore
import BackupProtocol
import Foundation
import Logging

/// An inventory task: every copy of the store with what its sidecar says and its receipt as
/// it is (unverified: the catalog judges it), for the catalog.
extension TaskRunner {
    static func inventory(_ configuration: AgentConfiguration, _ progress: ProgressBox) throws -> TaskOutcome {
        let store = try storeForReading(configuration)
        progress.set("listing the store")
        let scan = try store.scan()
        let copies = listing(scan.artifacts)
        let bytes = scan.artifacts.reduce(Int64(0)) { $0 + $1.size }
        return TaskOutcome(
            detail: "\(scan.artifacts.count) artifacts, \(bytes) bytes, \(scan.partials.count) partials",
            artifacts: ArtifactReport(complete: true, copies: copies, quarantine: try store.quarantineEntries()))
    }

    /// Each artifact with what its sidecar says (or why it cannot be used) and its receipt.
    static func listing(_ artifacts: [StoredArtifact]) -> [CopyReport] {
        var copies: [CopyReport] = []
        for artifact in artifacts {
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
            var copy = copyReport(location, size: artifact.size, dna: dna, state: .unverified, problem: problem)
            do { copy.receipt = try Store.receipt(beside: artifact.path) } catch {
                // An unreadable receipt is no receipt; the copy is still listed, with the reason.
                copy.problem = [problem, "its receipt cannot be read: \(error)"].compactMap { $0 }.joined(
                    separator: "; ")
            }
            copies.append(copy)
        }
        return copies
    }
}
