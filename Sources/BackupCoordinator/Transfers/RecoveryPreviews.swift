import BackupProtocol
import Foundation

/// Folder recoveries' previews (``SealedPreview``) between the agent's result and the admin
/// CLI's one fetch: in memory only, never in the catalog, the event log or a log line; each
/// kept at most an hour, at most 64 at once (the oldest goes first). A hub restarted in
/// between has none: the admin asks again. Sealed to the CLI's one-time key, a preview is
/// unreadable here as well.
public actor RecoveryPreviews {
    private var held: [Int64: (preview: SealedPreview, at: Date)] = [:]
    static let lifetime: TimeInterval = 3600
    static let capacity = 64

    public init() {}

    func keep(_ preview: SealedPreview, task: Int64, now: Date) {
        held = held.filter { now.timeIntervalSince($0.value.at) < Self.lifetime }
        while held.count >= Self.capacity, let oldest = held.min(by: { $0.value.at < $1.value.at })?.key {
            held[oldest] = nil
        }
        held[task] = (preview, now)
    }

    /// The preview of `task`, handed out once.
    func take(task: Int64, now: Date) -> SealedPreview? {
        guard let entry = held.removeValue(forKey: task), now.timeIntervalSince(entry.at) < Self.lifetime else {
            return nil
        }
        return entry.preview
    }
}
