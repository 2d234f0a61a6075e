import BackupCore
import BackupProtocol
import Foundation
import Logging

/// A verify task: each named copy (or every copy) read and judged. A copy the catalog holds a
/// reference for (``CopyReference``, with the lease) is judged by that reference: bytes that
/// differ are a mutant whatever the sidecar says, a sidecar that is missing or garbled beside
/// matching bytes is rewritten from the catalog's facts, and a copy whose artifact is gone is
/// reported `missing`. Other copies are judged by their sidecar. A mutant is moved to
/// quarantine, reported, and repaired from a good copy by the coordinator; one that cannot be
/// moved (a read-only store) is still reported, as `mutant`.
extension TaskRunner {
    static func verify(
        _ paths: [String]?, references: [CopyReference]?, _ configuration: AgentConfiguration, _ progress: ProgressBox
    ) throws -> TaskOutcome {
        let store = try storeForReading(configuration)
        // A verify names its copies (the oldest-verified within a budget) or takes them all.
        let named = try paths.map { paths in
            try paths.map { store.path(of: try store.location(ofRelative: $0)) }
                .filter { try FileSystem.linkStatus($0) != nil }
        }
        let artifacts = try named.map { $0.isEmpty ? [] : try store.scan($0).artifacts } ?? store.scan().artifacts
        var byPath: [String: CopyReference] = [:]
        for reference in references ?? [] { byPath[reference.path] = reference }
        var copies: [CopyReport] = []
        var mutants: [String] = []
        /// Mutants that could not be moved aside.
        var stuck: [String] = []
        var unverified = 0
        var rewritten = 0
        var seen = Set<String>()
        for (i, artifact) in artifacts.enumerated() {
            progress.set("verifying \(i + 1) of \(artifacts.count)")
            guard let location = artifact.location else { continue }
            seen.insert(location.relativePath)
            if let reference = byPath[location.relativePath] {
                let check = store.verify(
                    artifact,
                    reference: ArtifactDigests(size: reference.size, sha256: reference.sha256, md5: reference.md5),
                    sidecar: { reference.facts.sidecar(path: location.relativePath, digests: $0) })
                var problem = check.sidecarProblem
                var state: CopyState
                switch check.status {
                case .intact:
                    state = check.sidecarRight ? .intact : (artifact.hasSidecar ? .invalidSidecar : .missingSidecar)
                    if check.sidecarRight, problem != nil { rewritten += 1 }
                    if !check.sidecarRight { unverified += 1 }
                case .mutant(let reasons):
                    (state, problem) = quarantine(artifact, store, reasons)
                    if state == .mutant { stuck.append(location.relativePath) }
                    mutants.append(location.relativePath)
                case .unreadable(let why), .invalidSidecar(let why):
                    (state, problem) = (.unreadable, why)
                    unverified += 1
                case .missingSidecar:
                    (state, problem) = (.missingSidecar, "no sidecar")
                    unverified += 1
                }
                // The digest reported is the reference's for a copy that matches it, none otherwise:
                // a mutant's own digest is no claim the catalog should weigh.
                let dna =
                    state == .intact
                    ? check.digests.map { reference.facts.sidecar(path: location.relativePath, digests: $0) } : nil
                copies.append(
                    copyReport(
                        location, size: check.digests?.size ?? artifact.size, dna: dna, state: state,
                        verifiedAt: Date(),
                        problem: problem))
                continue
            }
            let result = store.verify(artifact)
            let problem: String?
            let state: CopyState
            switch result.status {
            case .intact: (state, problem) = (.intact, nil)
            case .mutant(let reasons):
                (state, problem) = quarantine(artifact, store, reasons)
                if state == .mutant { stuck.append(location.relativePath) }
                mutants.append(location.relativePath)
            case .missingSidecar:
                (state, problem) = (.missingSidecar, "no sidecar")
                unverified += 1
            case .invalidSidecar(let why):
                (state, problem) = (.invalidSidecar, why)
                unverified += 1
            case .unreadable(let why):
                (state, problem) = (.unreadable, why)
                unverified += 1
            }
            copies.append(
                copyReport(
                    location, size: artifact.size, dna: result.dna, state: state, verifiedAt: Date(), problem: problem))
        }
        // A copy the catalog holds in this verify's scope whose artifact is gone: missing, to be sent again.
        var missing: [String] = []
        for reference in references ?? [] where !seen.contains(reference.path) {
            // A path outside the layout is not this store's to judge.
            guard let location = try? store.location(ofRelative: reference.path) else { continue }
            let sidecar = try FileSystem.linkStatus(store.path(of: location) + ".dna") != nil
            copies.append(
                copyReport(
                    location, size: 0, dna: nil, state: .missing, verifiedAt: Date(),
                    problem: sidecar ? "the artifact is gone; its sidecar remains" : "the artifact is gone"))
            missing.append(reference.path)
        }
        var detail =
            "verified \(artifacts.count) artifacts: \(artifacts.count - mutants.count - unverified) intact, \(mutants.count) mutant, \(unverified) could not be verified"
        if rewritten > 0 { detail += ", \(rewritten) sidecars rewritten from the catalog's facts" }
        if !missing.isEmpty { detail += "; missing: " + missing.joined(separator: ", ") }
        let moved = mutants.filter { !stuck.contains($0) }
        if !moved.isEmpty { detail += "; mutants (quarantined): " + moved.joined(separator: ", ") }
        if !stuck.isEmpty { detail += "; mutants that cannot be quarantined: " + stuck.joined(separator: ", ") }
        return TaskOutcome(detail: detail, artifacts: ArtifactReport(complete: named == nil, copies: copies))
    }

    /// Moves a mutant aside; a store that cannot take it (read-only, full) still gets it reported.
    private static func quarantine(
        _ artifact: StoredArtifact, _ store: Store, _ reasons: [String]
    ) -> (CopyState, String) {
        do {
            let moved = try store.quarantine(artifact)
            return (.quarantined, reasons.joined(separator: "; ") + "; quarantined as \(moved)")
        } catch {
            return (.mutant, reasons.joined(separator: "; ") + "; it cannot be quarantined: \(error)")
        }
    }
}
