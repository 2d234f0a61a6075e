import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Evaluates the alert rules every `evaluate_seconds`: the conditions from the status board,
/// the nodes and the failed copies (``AlertRules``), the machines stepped (``AlertBook``), the
/// notices sent through the channels, and the book saved in the catalog. A channel that fails
/// leaves its notice due for the next evaluation, its error shown by `alerts`.
public struct AlertService: Service {
    let sites: SiteSource
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let board: StatusBoard
    let heartbeatSeconds: Int
    /// The hub's own certificate files to watch: its certificate and the site CA's.
    let certificateFiles: [(name: String, path: String)]
    let health: ChannelHealth
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    let logger: Logger

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await evaluate() } catch {
                    logger.error("the alert evaluation failed", metadata: ["scm.error": "\(error)"])
                }
                // Cancelled: shutting down.
                do { try await clock.sleep(for: .milliseconds(Int64(site.alerts.evaluateSeconds * 1000))) } catch {
                    return
                }
            }
        }
    }

    /// One evaluation; returns the notices it tried.
    @discardableResult
    func evaluate() async throws -> [AlertBook.Notice] {
        let now = wallClock.currentDate
        let site = site
        var certificates = try await catalog.agentCertificates()
        for file in certificateFiles {
            do {
                certificates.append(
                    AlertRules.Certificate(
                        name: file.name, node: nil, notAfter: try PEMFiles.certificate(file.path).notValidAfter))
            } catch {
                logger.warning(
                    "a certificate to watch cannot be read",
                    metadata: ["scm.file": "\(file.path)", "scm.error": "\(error)"])
            }
        }
        var history = AlertRules.History(
            failedTasks: try await catalog.tasks(TaskListQuery(states: [.failed], limit: TaskListQuery.maxLimit)),
            schedules: Scheduler.list(site, states: try await catalog.scheduleStates(), now: now),
            certificates: certificates, channelFailures: health.current)
        for node in site.nodes.keys.sorted() {
            history.diskFree[node] = try await catalog.samples(
                "disk.free:\(node)", since: now.addingTimeInterval(-7 * 86_400))
        }
        let conditions = AlertRules.evaluate(
            status: try await board.status(), nodes: try await catalog.nodes(now: now, onlineWithin: .infinity),
            failed: try await catalog.failedCopies(), site: site, now: now, heartbeatSeconds: heartbeatSeconds,
            history: history)
        var book = try await catalog.alertBook()
        let notices = book.step(
            conditions, silences: try await catalog.silences(at: now), policy: site.alerts, now: now)
        for notice in notices {
            let error = await deliver(notice, policy: site.alerts, now: now)
            book.markSent(notice, at: now, error: error)
            let channel = Self.hasChannel(site.alerts)
            logger.log(
                level: error == nil ? .notice : .error,
                error != nil
                    ? "alert notice not delivered" : channel ? "alert notice sent" : "alert (no channel configured)",
                metadata: [
                    "scm.rule": "\(notice.alert.rule.rawValue)", "scm.subject": "\(notice.alert.subject)",
                    "scm.kind": "\(notice.kind.rawValue)", "scm.error": "\(error ?? "-")",
                ])
        }
        try await catalog.saveAlertBook(book)
        try await dailyReport(book: book, site: site, now: now)
        return notices
    }

    /// Sends today's report once its time has come (`daily_report`), recorded in the catalog so
    /// that a restart sends it once; a failure is tried again at the next evaluation.
    func dailyReport(book: AlertBook, site: SiteConfiguration, now: Date) async throws {
        let policy = site.alerts
        guard let minute = policy.dailyReport, (policy.sendmail != nil && !policy.to.isEmpty) || policy.smtp != nil,
            let zone = TimeZone(identifier: site.schedule.timeZone),
            let due = DailyReport.due(at: minute, zone: zone, now: now)
        else { return }
        let stamp = AlertRules.iso(due)
        if let last = try await catalog.metaValue("daily_report"), last >= stamp { return }
        let mail = DailyReport.mail(
            status: try await board.status(), check: try await board.check(), alerts: book.list(all: false),
            policy: site.alerts, now: now)
        var errors: [String] = []
        if let command = policy.sendmail, !policy.to.isEmpty,
            let error = await Self.send(mail, command: command, now: now)
        {
            errors.append(error)
        }
        if let smtp = policy.smtp,
            let error = await SMTPChannel.send(Self.addressed(mail, smtp: smtp), settings: smtp, now: now)
        {
            errors.append(error)
        }
        if !errors.isEmpty {
            let error = errors.joined(separator: "; ")
            health.fail("daily report", error)
            logger.error("the daily report was not sent", metadata: ["scm.error": "\(error)"])
            return
        }
        health.succeed("daily report")
        try await catalog.setMetaValue("daily_report", stamp)
        logger.notice("daily report sent", metadata: ["scm.due": "\(stamp)"])
    }

    /// The notice as a mail to the SMTP channel's sender and recipients.
    static func mail(_ notice: AlertBook.Notice, policy: AlertPolicy, smtp: SMTPSettings) -> MailMessage {
        addressed(mail(notice, policy: policy), smtp: smtp)
    }

    /// `mail` from and to the SMTP channel's addresses (they default to `[alerts]`'s).
    static func addressed(_ mail: MailMessage, smtp: SMTPSettings) -> MailMessage {
        var mail = mail
        if let from = smtp.from { mail.from = from }
        if let to = smtp.to { mail.to = to }
        return mail
    }

    /// The notice as a mail.
    static func mail(_ notice: AlertBook.Notice, policy: AlertPolicy) -> MailMessage {
        let alert = notice.alert
        let word = notice.kind == .resolved ? "RESOLVED" : notice.kind == .repeating ? "STILL FIRING" : "FIRING"
        var body = "\(word): \(alert.rule.rawValue) \(alert.subject)\n\n\(alert.summary)\n\n"
        body += "since \(AlertRules.iso(alert.since))"
        if let resolved = alert.resolvedAt { body += ", resolved \(AlertRules.iso(resolved))" }
        body += "\n"
        if !notice.folded.isEmpty {
            body += "\nWhile this agent is silent, these alerts of it are folded into this notice:\n"
            for folded in notice.folded { body += "- \(folded.rule.rawValue) \(folded.subject): \(folded.summary)\n" }
        }
        body += "\n'scm-backup alerts' lists every alert; 'scm-backup alerts silence' quiets one.\n"
        return MailMessage(
            from: policy.from, to: policy.to, subject: "[scm-backup] \(word) \(alert.rule.rawValue) \(alert.subject)",
            body: body)
    }

    /// Sends through every channel configured; the failures joined, or nil. Without a channel
    /// the notice counts as delivered (alerts are still listed).
    /// A notice counts as delivered when one channel took it; a channel that failed is raised
    /// as `channel-failing` (its failure kept in ``ChannelHealth``).
    func deliver(_ notice: AlertBook.Notice, policy: AlertPolicy, now: Date) async -> String? {
        var failures: [String] = []
        var delivered = false
        if let command = policy.sendmail, !policy.to.isEmpty {
            if let error = await Self.send(Self.mail(notice, policy: policy), command: command, now: now) {
                failures.append(error)
                health.fail("sendmail", error)
            } else {
                delivered = true
                health.succeed("sendmail")
            }
        }
        if let smtp = policy.smtp {
            if let error = await SMTPChannel.send(
                Self.mail(notice, policy: policy, smtp: smtp), settings: smtp, now: now)
            {
                failures.append(error)
                health.fail("smtp", error)
            } else {
                delivered = true
                health.succeed("smtp")
            }
        }
        if let webhook = policy.webhook {
            if let error = await Webhook.send(
                notice, urlFile: webhook.urlFile, secretFile: webhook.secretFile, now: now)
            {
                failures.append(error)
                health.fail("webhook", error)
            } else {
                delivered = true
                health.succeed("webhook")
            }
        }
        return delivered || failures.isEmpty ? nil : failures.joined(separator: "; ")
    }

    /// Whether any channel is configured.
    static func hasChannel(_ policy: AlertPolicy) -> Bool {
        (policy.sendmail != nil && !policy.to.isEmpty) || policy.webhook != nil || policy.smtp != nil
    }

    /// Runs the sendmail-compatible `command` with `mail` on its stdin; the failure, or nil.
    static func send(_ mail: MailMessage, command: [String], now: Date) async -> String? {
        let message = Array(mail.render(date: now).utf8)
        // Off the concurrency pool: the command may take up to its 30 s.
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    returning: ProcessGroupRunner.deliver(message, through: command).map { "sendmail: \($0)" })
            }
        }
    }

}
