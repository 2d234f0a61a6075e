import BackupCore
import BackupProtocol
import Foundation

/// The daily report (the legacy `scm-backup-mail`), sent at `[alerts] daily_report` every day,
/// also when all is well: each source's newest backup and its copies, what each backup node
/// lacks, and the alerts firing.
public enum DailyReport {
    /// When today's report is due (in `zone`), at or before `now`; nil before its time.
    static func due(at minute: Int, zone: TimeZone, now: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        guard
            let at = calendar.date(
                bySettingHour: minute / 60, minute: minute % 60, second: 0, of: calendar.startOfDay(for: now)),
            at <= now
        else { return nil }
        return at
    }

    public static func mail(
        status: SiteStatus, check: [CheckEntry], alerts: [AlertInfo], policy: AlertPolicy, now: Date
    ) -> MailMessage {
        let firing = alerts.filter { $0.phase == .firing }
        var body = "The site on \(AlertRules.iso(now)): "
        body += firing.isEmpty ? "all is well.\n" : "\(firing.count) alerts firing.\n"
        if !firing.isEmpty {
            body += "\nFiring:\n"
            for a in firing {
                body += "- \(a.rule.rawValue) \(a.subject): \(a.summary)\(a.quiet.map { " (\($0))" } ?? "")\n"
            }
        }
        body += "\nSources (newest backup, its age, its copies off the box):\n"
        for s in status.sources {
            let newest =
                s.newest.map { "\($0.stamp), \(AlertRules.duration(TimeInterval($0.ageSeconds ?? 0))) old" } ?? "none"
            let copies = s.copies.map {
                "\($0.node) \($0.state?.rawValue ?? "missing")\($0.verified ? " verified" : "")"
            }
            body +=
                "- \(s.node)/\(s.source) (\(s.kind)): \(newest); \(copies.isEmpty ? "no backup node" : copies.joined(separator: ", "))\(s.late ? "; LATE" : "")\n"
        }
        body += "\nWhat each backup node lacks of its servers' artifacts:\n"
        let lacking = check.filter { $0.missingCount > 0 }
        if lacking.isEmpty { body += "- nothing\n" }
        for c in lacking {
            body += "- \(c.backup) lacks \(c.missingCount) of \(c.artifacts) artifacts of \(c.server)/\(c.source)\n"
        }
        body += "\nNodes:\n"
        for n in status.nodes {
            let disk =
                n.diskFree.flatMap { free in
                    n.diskTotal.map { "\(AlertRules.formatBytes(free)) free of \(AlertRules.formatBytes($0))" }
                } ?? "disk unknown"
            body += "- \(n.name) (\(n.roles.joined(separator: ", "))): \(n.online ? "online" : "OFFLINE"), \(disk)\n"
        }
        return MailMessage(
            from: policy.from, to: policy.to,
            subject: "[scm-backup] daily report: " + (firing.isEmpty ? "all is well" : "\(firing.count) alerts firing"),
            body: body)
    }
}
