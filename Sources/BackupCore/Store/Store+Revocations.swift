import Foundation

/// The revoked certificate serials an agent's data port honours, kept in its store
/// (`<store>/.scm-backup-revoked`, format `scm-backup-revoked-serials/1`), so that a data port
/// restarted while the hub is unreachable still refuses a revoked peer. The list only grows:
/// what the coordinator says is added, nothing is taken away, so an older or forged shorter
/// list can never un-revoke anyone.
extension Store {
    struct RevokedSerials: Codable {
        var format = "scm-backup-revoked-serials/1"
        var serials: [String]
    }

    /// The file's path.
    public var revokedSerialsPath: String { root + "/.scm-backup-revoked" }

    /// The serials on disk; nil when the store holds no list yet (the data port then refuses
    /// everyone until the coordinator gives one). An unreadable file is an error.
    public func readRevokedSerials() throws -> Set<String>? {
        guard try FileSystem.linkStatus(revokedSerialsPath) != nil else { return nil }
        let bytes = try FileSystem.readSmallFile(revokedSerialsPath)
        let list: RevokedSerials
        do { list = try JSONDecoder().decode(RevokedSerials.self, from: Data(bytes)) } catch {
            throw BackupError(
                .storeMarker,
                "The revocation list '\(revokedSerialsPath)' is not valid JSON (\(error)); the data port refuses every peer until the coordinator sends a list again.",
                cause: error)
        }
        guard list.format == "scm-backup-revoked-serials/1" else {
            throw BackupError(
                .storeMarker,
                "The revocation list '\(revokedSerialsPath)' has format '\(list.format)', not scm-backup-revoked-serials/1; the data port refuses every peer until the coordinator sends a list again."
            )
        }
        return Set(list.serials.map { $0.lowercased() })
    }

    /// Adds `serials` to the list on disk (fsynced) and returns the whole list.
    @discardableResult
    public func mergeRevokedSerials(_ serials: Set<String>) throws -> Set<String> {
        let known: Set<String>?
        do { known = try readRevokedSerials() } catch let error as BackupError where error.code == .storeMarker {
            // Bad content: replaced by the coordinator's list, which is the whole site's (the CA's
            // revocations only grow), so nothing revoked is lost. An I/O error is thrown.
            known = nil
        }
        let merged = (known ?? []).union(serials.map { $0.lowercased() })
        if merged != known {
            let data = try JSONEncoder().encode(RevokedSerials(serials: merged.sorted()))
            try FileSystem.writeAtomically(Array(data) + [0x0A], to: revokedSerialsPath, mode: 0o600)
        }
        return merged
    }
}
