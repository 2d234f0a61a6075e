import BackupCore
import BackupProtocol
import Foundation
import Logging

/// Logs refusals at `notice`, at most one line per peer and code in each `window`, with the
/// number of like refusals left out since the last line, so that a flood can neither fill the
/// disk nor hide among its own lines. Peer strings are escaped (they may come from a
/// certificate or a claim).
public final class RefusalLog: Sendable {
    struct Entry {
        var lastLogged: Date
        var dropped: Int
    }
    private let entries = LockedBox<[String: Entry]>([:])
    let window: TimeInterval
    /// At most this many peer-and-code pairs are remembered; the oldest are forgotten first.
    let capacity: Int

    public init(window: TimeInterval = 60, capacity: Int = 10_000) {
        self.window = window
        self.capacity = capacity
    }

    /// Notes a refusal of `peer` (a node name or an address) with wire code `code`.
    public func refused(peer: String, code: BackupError.Code, logger: Logger, detail: String? = nil, now: Date = Date())
    {
        let key = peer + "\u{0}" + code.rawValue
        let dropped: Int? = entries.withLock { entries in
            if var entry = entries[key], now.timeIntervalSince(entry.lastLogged) < window {
                entry.dropped += 1
                entries[key] = entry
                return nil
            }
            let dropped = entries[key]?.dropped ?? 0
            if entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastLogged < $1.value.lastLogged }) {
                entries[oldest.key] = nil
            }
            entries[key] = Entry(lastLogged: now, dropped: 0)
            return dropped
        }
        guard let dropped else { return }
        var metadata: Logger.Metadata = ["scm.peer": "\(AuditText.escape(peer, limit: 200))", "scm.code": "\(code)"]
        if let detail { metadata["scm.detail"] = "\(AuditText.escape(detail, limit: 500))" }
        if dropped > 0 { metadata["scm.dropped"] = "\(dropped)" }
        logger.notice("request refused", metadata: metadata)
    }
}
