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
        let history = AlertRules.History(
            failedTasks: try await catalog.tasks(TaskListQuery(states: [.failed], limit: TaskListQuery.maxLimit)),
            schedules: Scheduler.list(site, states: try await catalog.scheduleStates(), now: now),
            certificates: certificates)
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
            let channel = site.alerts.sendmail != nil && !site.alerts.to.isEmpty
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
        return notices
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
    func deliver(_ notice: AlertBook.Notice, policy: AlertPolicy, now: Date) async -> String? {
        guard let command = policy.sendmail, !policy.to.isEmpty else { return nil }
        let message = Array(Self.mail(notice, policy: policy).render(date: now).utf8)
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                do {
                    try ToolRunner.run(Tool(command[0]), Array(command.dropFirst()), input: message)
                    continuation.resume(returning: nil)
                } catch {
                    continuation.resume(returning: "sendmail: \(error)")
                }
            }
        }
    }
}
