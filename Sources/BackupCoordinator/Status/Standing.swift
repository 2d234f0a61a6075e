import BackupCore
import BackupProtocol
import Foundation

/// The one definition each of *verified*, *verify-overdue* and *late*, which status, purge,
/// alerts and the dashboard share (issue 12, item 5).
public enum Standing {
    /// A copy is verified when its last state is `intact` and the coordinator recorded its
    /// verification (at arrival under a ticket it signed, by a verify task it leased, or by the
    /// origin's own backup) within `maxAge`. The catalog sets `verifiedAt` only from those; a
    /// report nobody asked for never does.
    public static func isVerified(_ copy: CopyInfo, now: Date, maxAge: TimeInterval) -> Bool {
        guard copy.state == .intact, let at = copy.verifiedAt else { return false }
        return now.timeIntervalSince(at) <= maxAge
    }

    /// Intact, but not verified within `maxAge` (or never): it is due first.
    public static func isVerifyOverdue(_ copy: CopyInfo, now: Date, maxAge: TimeInterval) -> Bool {
        copy.state == .intact && !isVerified(copy, now: now, maxAge: maxAge)
    }

    /// A source is late when, `grace` after its last scheduled fire time, it has no artifact
    /// newer than that fire time. Without a fire time (off, or never reached) it is not late.
    public static func isLate(newestMadeAt: Date?, lastFire: Date?, now: Date, grace: TimeInterval) -> Bool {
        guard let lastFire, now.timeIntervalSince(lastFire) > grace else { return false }
        guard let made = newestMadeAt else { return true }
        return made < lastFire
    }
}
