import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging

/// The revocation list, re-read when its file changes.
final class RevocationSource: Sendable {
    private let path: String?
    let logger: Logger?
    private let cache = LockedBox<(Date?, RevocationList)>((nil, RevocationList(serials: [], updated: .distantPast)))

    init(path: String?, logger: Logger? = nil) {
        self.path = path
        self.logger = logger
    }

    func current() throws -> RevocationList {
        guard let path else { return RevocationList(serials: [], updated: .distantPast) }
        let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        if let cached = cache.withLock({ $0.0 == modified ? $0.1 : nil }) { return cached }
        let list = try RevocationList.read(path)
        cache.withLock { $0 = (modified, list) }
        logger?.debug(
            "revocation list loaded", metadata: ["scm.file": "\(path)", "scm.serials": "\(list.serials.count)"])
        return list
    }
}
