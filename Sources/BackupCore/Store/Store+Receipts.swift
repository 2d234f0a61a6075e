import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The coordinator's receipt beside an artifact, `<artifact>.dna.sig` (`Protocol/store.md`).
///
/// The store only keeps the text: whether it verifies, and whether it names the artifact, is
/// decided by whoever reads it with the keys it trusts (an agent before writing it, a
/// catalog being rebuilt). It moves with its artifact (trash, quarantine, restore) after the
/// `.dna`, and a listing never takes it for an artifact.
extension Store {
    public static let receiptSuffix = ".dna.sig"
    /// A receipt is one envelope line; anything longer is not one.
    static let receiptLimit = 64 << 10

    /// The receipt beside the artifact at `artifactPath`, nil when there is none.
    public static func receipt(beside artifactPath: String) throws -> String? {
        let path = artifactPath + receiptSuffix
        guard try FileSystem.linkStatus(path) != nil else { return nil }
        let bytes = try FileSystem.readSmallFile(path, limit: receiptLimit)
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes `envelope` beside the artifact at `artifactPath`, atomically and fsynced (0600).
    public static func writeReceipt(_ envelope: String, beside artifactPath: String) throws {
        try FileSystem.writeAtomically(Array((envelope + "\n").utf8), to: artifactPath + receiptSuffix)
    }

    /// Moves the receipt beside `from`, when there is one, to beside `to`.
    static func moveReceipt(beside from: String, to: String) throws {
        guard try FileSystem.linkStatus(from + receiptSuffix) != nil else { return }
        try FileSystem.rename(from + receiptSuffix, to: to + receiptSuffix)
    }

    /// Deletes the receipt beside `artifactPath`, when there is one.
    static func deleteReceipt(beside artifactPath: String) throws {
        guard unlink(artifactPath + receiptSuffix) == 0 || errno == ENOENT else {
            throw BackupError.posix("delete", path: artifactPath + receiptSuffix, errno: errno)
        }
    }
}
