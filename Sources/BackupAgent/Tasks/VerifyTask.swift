import BackupCore
import BackupProtocol
import Foundation
import Logging

/// A verify task: each named copy (or every copy) read against its DNA; a mutant is moved
/// to quarantine, reported, and repaired from a good copy by the coordinator.
extension TaskRunner {
    static func verify(
        _ paths: [String]?, _ configuration: AgentConfiguration, _ progress: ProgressBox
    ) throws -> TaskOutcome {
        let store = try storeForReading(configuration)
        // A verify names its copies (the oldest-verified within a budget) or takes them all.
        let named = try paths.map { paths in
            try paths.map { store.path(of: try store.location(ofRelative: $0)) }
                .filter { try FileSystem.linkStatus($0) != nil }
        }
        let artifacts = try named.map { $0.isEmpty ? [] : try store.scan($0).artifacts } ?? store.scan().artifacts
        var copies: [CopyReport] = []
        var mutants: [String] = []
        var unverified = 0
        for (i, artifact) in artifacts.enumerated() {
            progress.set("verifying \(i + 1) of \(artifacts.count)")
            let result = store.verify(artifact)
            guard let location = artifact.location else { continue }
            let problem: String?
            switch result.status {
            case .intact: problem = nil
            case .mutant(let reasons):
                // Never deleted or overwritten: moved aside, reported, repaired from a good copy.
                let moved = try store.quarantine(artifact)
                problem = reasons.joined(separator: "; ") + "; quarantined as \(moved)"
                mutants.append(location.relativePath)
            case .missingSidecar:
                problem = "no sidecar"
                unverified += 1
            case .invalidSidecar(let why), .unreadable(let why):
                problem = why
                unverified += 1
            }
            let state: CopyState =
                switch result.status {
                case .intact: .intact
                case .mutant: .quarantined
                case .missingSidecar: .missingSidecar
                case .invalidSidecar: .invalidSidecar
                case .unreadable: .unreadable
                }
            copies.append(
                copyReport(
                    location, size: artifact.size, dna: result.dna, state: state, verifiedAt: Date(),
                    problem: problem))
        }
        var detail =
            "verified \(artifacts.count) artifacts: \(artifacts.count - mutants.count - unverified) intact, \(mutants.count) mutant, \(unverified) could not be verified"
        if !mutants.isEmpty { detail += "; mutants (quarantined): " + mutants.joined(separator: ", ") }
        return TaskOutcome(detail: detail, artifacts: ArtifactReport(complete: named == nil, copies: copies))
    }
}
