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
