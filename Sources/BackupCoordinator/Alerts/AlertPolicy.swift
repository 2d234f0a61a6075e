import BackupCore
import BackupProtocol
import Foundation

/// `[alerts]` of the site file: when each rule fires and where notices go. Every key has a
/// default (`Protocol/alerts.md`); without `to` and a channel, alerts are kept and listed but
/// not sent. A source is *late* by `[schedule] backup_grace` (the one definition status and
/// alerts share, ``Standing``).
public struct AlertPolicy: Sendable, Equatable {
    public static func == (a: AlertPolicy, b: AlertPolicy) -> Bool {
        a.agentSilentAfter == b.agentSilentAfter && a.diskFreeMin == b.diskFreeMin && a.repeatSeconds == b.repeatSeconds
            && a.diskFullWithin == b.diskFullWithin
            && a.purgePausedAfter == b.purgePausedAfter && a.notOffBoxAfter == b.notOffBoxAfter
            && a.certificateWarn == b.certificateWarn && a.taskFailures == b.taskFailures
            && a.evaluateSeconds == b.evaluateSeconds && a.to == b.to && a.from == b.from && a.sendmail == b.sendmail
            && a.heartbeatURLFile == b.heartbeatURLFile && a.heartbeatSeconds == b.heartbeatSeconds
            && a.dailyReport == b.dailyReport && a.webhook?.urlFile == b.webhook?.urlFile
            && a.webhook?.secretFile == b.webhook?.secretFile && a.smtp == b.smtp
    }

    /// An agent not heard from for this long is silent (`agent_silent_after`, "10m").
    public var agentSilentAfter: TimeInterval = 600
    /// A store disk with less free than this share (`disk_free_min`, "10%").
    public var diskFreeMin = 0.10
    /// A disk projected full within this fires (`disk_full_within`, "14d").
    public var diskFullWithin: TimeInterval = 14 * 86_400
    /// A firing alert is sent again this often while it lasts (`repeat_hours`, 24).
    public var repeatSeconds: TimeInterval = 24 * 3600
    /// Purging paused longer than this fires (`purge_paused_after`, "1d").
    public var purgePausedAfter: TimeInterval = 86_400
    /// A newest artifact short of copies off its box fires only after this (`not_off_box_after`,
    /// "2h"): its transfers take time after the backup.
    public var notOffBoxAfter: TimeInterval = 2 * 3600
    /// A certificate expiring within this fires (`certificate_warn_days`, 30).
    public var certificateWarn: TimeInterval = 30 * 86_400
    /// Failures of one node, kind and source within a day that fire (`task_failures`, 3).
    public var taskFailures = 3
    /// Seconds between two evaluations (`evaluate_seconds`, 60).
    public var evaluateSeconds: TimeInterval = 60
    /// Recipients and sender of the mails (`to`, `from`).
    public var to: [String] = []
    public var from = "scm-backup"
    /// `[alerts.sendmail] command`: an argv, run without a shell, the message on its stdin.
    public var sendmail: [String]?
    /// `[alerts.smtp]`: mail submission to a relay (``SMTPSettings``).
    public var smtp: SMTPSettings?
    /// `[alerts.heartbeat] url_file`: a file holding the URL an outside monitor expects a GET
    /// of every `heartbeat_minutes` (5), so that a silent hub is noticed.
    public var heartbeatURLFile: String?
    /// `[alerts.webhook] url_file`, `secret_file`: the JSON webhook channel (``Webhook``).
    public var webhook: (urlFile: String, secretFile: String)?
    public var heartbeatSeconds: TimeInterval = 300
    /// `daily_report = "HH:MM"` (in `[schedule]`'s time zone): the daily report's time, in
    /// minutes after midnight; nil: none. Sent every day, also when all is well.
    public var dailyReport: Int?

    public init() {}

    static func read(_ top: ConfigTable) throws -> AlertPolicy {
        var policy = AlertPolicy()
        guard let t = try top.table("alerts") else { return policy }
        func duration(_ key: String, _ example: String) throws -> TimeInterval? {
            guard let text = try t.string(key) else { return nil }
            let seconds: TimeInterval
            do { seconds = try RetentionPolicy.parseDuration(text) } catch let error as BackupError {
                throw t.error(key, "'\(text)' is not a duration such as \"\(example)\" (\(error.message))")
            }
            guard seconds > 0 else { throw t.error(key, "'\(text)' must be longer than 0") }
            return seconds
        }
        if let v = try duration("agent_silent_after", "10m") { policy.agentSilentAfter = v }
        if let v = try duration("purge_paused_after", "1d") { policy.purgePausedAfter = v }
        if let v = try duration("not_off_box_after", "2h") { policy.notOffBoxAfter = v }
        if let v = try duration("disk_full_within", "14d") { policy.diskFullWithin = v }
        if let text = try t.string("disk_free_min") {
            guard text.hasSuffix("%"), let percent = Double(text.dropLast()), (0..<100).contains(percent) else {
                throw t.error("disk_free_min", "'\(text)' is not a share such as \"10%\" (0 to 99 %)")
            }
            policy.diskFreeMin = percent / 100
        }
        if let hours = try t.double("repeat_hours") {
            guard (1...8760).contains(hours) else { throw t.error("repeat_hours", "\(hours) is outside 1...8760") }
            policy.repeatSeconds = hours * 3600
        }
        if let days = try t.int("certificate_warn_days") {
            guard (1...365).contains(days) else { throw t.error("certificate_warn_days", "\(days) is outside 1...365") }
            policy.certificateWarn = TimeInterval(days) * 86_400
        }
        if let n = try t.int("task_failures") {
            guard (1...1000).contains(n) else { throw t.error("task_failures", "\(n) is outside 1...1000") }
            policy.taskFailures = n
        }
        if let seconds = try t.double("evaluate_seconds") {
            guard (1...3600).contains(seconds) else {
                throw t.error("evaluate_seconds", "\(seconds) is outside 1...3600")
            }
            policy.evaluateSeconds = seconds
        }
        if let to = try t.strings("to") {
            for address in to where !MailMessage.isAddress(address) {
                throw t.error(
                    "to", "'\(AuditText.escape(address, limit: 100))' is not a mail address such as ops@example.org")
            }
            policy.to = to
        }
        if let from = try t.string("from") {
            guard MailMessage.isAddress(from) || !from.contains(where: { $0.isNewline || $0 == "<" || $0 == ">" })
            else {
                throw t.error("from", "'\(AuditText.escape(from, limit: 100))' is not a sender")
            }
            policy.from = from
        }
        if let h = try t.table("heartbeat") {
            guard let file = try h.string("url_file"), file.hasPrefix("/") else {
                throw h.error("url_file", "give the absolute path of the file holding the monitor's URL")
            }
            policy.heartbeatURLFile = file
            if let minutes = try h.double("heartbeat_minutes") {
                guard (0.01...1440).contains(minutes) else {
                    throw h.error("heartbeat_minutes", "\(minutes) is outside 0.01...1440")
                }
                policy.heartbeatSeconds = minutes * 60
            }
            try h.finish()
        }
        if let w = try t.table("webhook") {
            guard let url = try w.string("url_file"), url.hasPrefix("/") else {
                throw w.error("url_file", "give the absolute path of the file holding the webhook's URL")
            }
            guard let secret = try w.string("secret_file"), secret.hasPrefix("/") else {
                throw w.error("secret_file", "give the absolute path of the file holding the HMAC secret (mode 0600)")
            }
            try w.finish()
            policy.webhook = (url, secret)
        }
        if let text = try t.string("daily_report") {
            let hm = text.split(separator: ":")
            guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...23).contains(h), (0...59).contains(m)
            else {
                throw t.error("daily_report", "'\(text)' is not a time such as \"07:00\"")
            }
            policy.dailyReport = h * 60 + m
        }
        if let m = try t.table("smtp") {
            var settings = try SMTPSettings.read(m)
            if settings.from == nil {
                guard MailMessage.isAddress(policy.from) else {
                    throw m.error("from", "give a sender address (or [alerts] from): '\(policy.from)' is not one")
                }
                settings.from = policy.from
            }
            if settings.to == nil { settings.to = policy.to }
            guard !(settings.to ?? []).isEmpty else {
                throw m.error("to", "give at least one recipient (or [alerts] to)")
            }
            policy.smtp = settings
        }
        if let s = try t.table("sendmail") {
            guard let command = try s.strings("command"), let program = command.first, program.hasPrefix("/") else {
                throw s.error(
                    "command",
                    "give the program (an absolute path) and its arguments, e.g. [\"/usr/sbin/sendmail\", \"-t\", \"-oi\"]"
                )
            }
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw s.error("command", "'\(program)' is not an executable file")
            }
            try s.finish()
            policy.sendmail = command
        }
        try t.finish()
        return policy
    }
}
