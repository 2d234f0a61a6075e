import Foundation

/// The verdict on one artifact.
public enum VerifyStatus: Sendable, Equatable {
    /// Bytes match the DNA.
    case intact
    /// Bytes differ from the DNA: the reasons say how.
    case mutant([String])
    /// No `.dna` beside the artifact.
    case missingSidecar
    /// The sidecar cannot be parsed.
    case invalidSidecar(String)
    /// The artifact could not be read (or, with `deep`, its archive is damaged while its DNA
    /// still matches, which means it was made damaged).
    case unreadable(String)

    /// The word used in listings and `--json`.
    public var label: String {
        switch self {
        case .intact: "ok"
        case .mutant: "mutant"
        case .missingSidecar: "missing-sidecar"
        case .invalidSidecar: "invalid-sidecar"
        case .unreadable: "unreadable"
        }
    }
}

/// The result of verifying one artifact.
public struct VerifyResult: Sendable {
    public var artifact: StoredArtifact
    public var status: VerifyStatus
    /// The DNA it was checked against, when the sidecar could be read.
    public var dna: DNA?
}

extension Store {
    /// Recomputes the DNA of an artifact and compares values with its sidecar: SHA-256 and
    /// size for new sidecars, MD5 and size where a legacy sidecar has nothing else. `deep`
    /// also reads the whole archive through (every member and the gzip CRC) in the same pass.
    public func verify(_ artifact: StoredArtifact, deep: Bool = false) -> VerifyResult {
        guard artifact.hasSidecar else { return VerifyResult(artifact: artifact, status: .missingSidecar) }
        let dna: DNA
        do {
            dna = try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
        } catch {
            return VerifyResult(artifact: artifact, status: .invalidSidecar("\(error)"))
        }
        var reasons: [String] = []
        let fileName = (artifact.path as NSString).lastPathComponent
        if !dna.artifact.isEmpty && dna.artifact != fileName {
            reasons.append("its sidecar describes '\(dna.artifact)'")
        }
        let digests: ArtifactDigests
        do {
            if deep {
                do {
                    digests = try ArchiveInspector.check(artifact.path, digests: dna.digestsToCheck).fileDigests!
                } catch let error as BackupError where error.code == .archiveCorrupt || error.code == .archiveTruncated
                {
                    // A damaged archive: a mutant if its bytes also differ from the DNA.
                    let plain = try Store.digest(artifact.path, dna.digestsToCheck)
                    let differences = dna.mismatches(plain)
                    if differences.isEmpty && reasons.isEmpty {
                        return VerifyResult(artifact: artifact, status: .unreadable(error.message), dna: dna)
                    }
                    return VerifyResult(
                        artifact: artifact, status: .mutant(reasons + differences + [error.message]), dna: dna)
                }
            } else {
                digests = try Store.digest(artifact.path, dna.digestsToCheck)
            }
        } catch {
            return VerifyResult(artifact: artifact, status: .unreadable("\(error)"), dna: dna)
        }
        reasons += dna.mismatches(digests)
        return VerifyResult(artifact: artifact, status: reasons.isEmpty ? .intact : .mutant(reasons), dna: dna)
    }

    /// Size and digests of a file's bytes, streamed.
    public static func digest(_ path: String, _ selection: DigestSelection) throws -> ArtifactDigests {
        let fd = try FileDescriptor.openForReading(path)
        return try withFileDescriptor(fd) { fd in
            var acc = DigestAccumulator(selection)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try fd.read(into: buffer)
                if n == 0 { break }
                acc.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            return acc.finalize()
        }
    }
}

/// The verdict on one artifact judged by the catalog's reference rather than its sidecar.
public struct ReferenceCheck: Sendable {
    /// `.intact` when the bytes match the reference, `.mutant` when they do not (whatever the
    /// sidecar says), `.unreadable` when they cannot be read.
    public var status: VerifyStatus
    /// What was computed, when the bytes could be read.
    public var digests: ArtifactDigests?
    /// What was wrong with the sidecar of matching bytes (missing, garbled, disagreeing), and
    /// whether it was rewritten; nil when it was right.
    public var sidecarProblem: String?
    /// True when the sidecar is right now (it was, or it was rewritten).
    public var sidecarRight: Bool
}

extension Store {
    /// Recomputes an artifact's digests and compares them with `reference` (size and SHA-256,
    /// or MD5 for a legacy artifact), the catalog's record of what its origin made: a swapped,
    /// flipped or truncated artifact is a mutant even when its sidecar was swapped with it.
    /// When the bytes match but the sidecar is missing, garbled or disagrees, the sidecar is
    /// rewritten atomically from `sidecar` (the catalog's facts with the digests computed here).
    public func verify(
        _ artifact: StoredArtifact, reference: ArtifactDigests, sidecar: (ArtifactDigests) -> DNA
    ) -> ReferenceCheck {
        var problem: String?
        var dna: DNA?
        if !artifact.hasSidecar {
            problem = "no sidecar"
        } else {
            do {
                dna = try DNA.decode(try FileSystem.readSmallFile(artifact.sidecarPath), path: artifact.sidecarPath)
            } catch {
                problem = "its sidecar cannot be read (\(error))"
            }
        }
        var selection: DigestSelection = reference.sha256 != nil ? .sha256 : .md5
        if let dna { selection.formUnion(dna.digestsToCheck) }
        let digests: ArtifactDigests
        do { digests = try Store.digest(artifact.path, selection) } catch {
            return ReferenceCheck(status: .unreadable("\(error)"), sidecarRight: false)
        }
        var reasons: [String] = []
        if digests.size != reference.size {
            reasons.append("\(digests.size) bytes, the catalog recorded \(reference.size)")
        }
        if let want = reference.sha256 {
            if digests.sha256 != want.lowercased() {
                reasons.append("sha256 \(digests.sha256 ?? "-") instead of the catalog's \(want)")
            }
        } else if let want = reference.md5, digests.md5 != want.lowercased() {
            reasons.append("md5 \(digests.md5 ?? "-") instead of the catalog's \(want)")
        }
        guard reasons.isEmpty else {
            return ReferenceCheck(status: .mutant(reasons), digests: digests, sidecarRight: false)
        }
        if let dna {
            var wrong = dna.mismatches(digests)
            let fileName = (artifact.path as NSString).lastPathComponent
            if !dna.artifact.isEmpty && dna.artifact != fileName { wrong.append("it describes '\(dna.artifact)'") }
            if !wrong.isEmpty { problem = "its sidecar disagrees (\(wrong.joined(separator: "; ")))" }
        }
        guard let problem else { return ReferenceCheck(status: .intact, digests: digests, sidecarRight: true) }
        do {
            try FileSystem.writeAtomically(try sidecar(digests).encoded(), to: artifact.sidecarPath)
            return ReferenceCheck(
                status: .intact, digests: digests,
                sidecarProblem: problem + "; rewritten from the catalog's facts", sidecarRight: true)
        } catch {
            return ReferenceCheck(
                status: .intact, digests: digests, sidecarProblem: problem + "; it cannot be rewritten: \(error)",
                sidecarRight: false)
        }
    }
}
