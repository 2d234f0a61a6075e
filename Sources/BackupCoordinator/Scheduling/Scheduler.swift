import BackupCore
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

/// Fires each source's runs at the times of its schedule (``SourceSchedule``), on its own,
/// from the hub: the nightly cycle an admin used to submit by hand, and the legacy site's root
/// crontabs. The sources due at one look make one run (``Runs``): their backups, then the
/// transfers to their backup nodes. What it did for each source is kept in the catalog (``ScheduleState``), so a
/// restart between fire times fires nothing twice, and after the hub was down the latest
/// missed slot runs once at start when it is within `catch_up_within` (and `catch_up` is on),
/// never once per missed slot; an older one is recorded as missed. A slot that comes while the
/// source's previous backup is still queued or running is recorded `skipped: still running`.
///
/// An svn source that a Trac environment of its node names as `svn_source` is not fired on its
/// own: the Trac environment's backup copies both under one freeze, on that same schedule.
/// Time comes from the injected clocks: instants from `wallClock`, sleeps on `clock`, at most
/// ``longestSleep`` at a time so that a wall clock that jumps is noticed.
public struct Scheduler: Service {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let runs: Runs
    let submissions: TaskSubmission
    let wallClock: any WallClock
    let clock: any Clock<Duration>
    let logger: Logger

    /// The longest sleep between two looks.
    public static let longestSleep: TimeInterval = 60
    /// A slot reached this late is on time (the sleep's wake-up, a slow look), not a catch-up.
    public static let onTime: TimeInterval = 120

    /// One scheduled source.
    struct Entry: Sendable {
        let node: String
        let source: String
        let schedule: SourceSchedule
        var key: String { node + "/" + source }
    }

    /// What to do for one source at one look.
    enum Decision: Equatable {
        /// Nothing is due.
        case none
        /// The source is new to the scheduler: its schedule starts now, nothing is fired.
        case start(Date)
        /// Fire the slot (late when it is a catch-up after the hub was down).
        case fire(slot: Date, late: Bool)
        /// The slot passed too long ago (the hub was down); it is recorded, not run.
        case miss(slot: Date)
    }

    /// The sources to fire.
    static func entries(_ site: SiteConfiguration) -> [Entry] {
        site.nodes.values.sorted { $0.name < $1.name }.flatMap { node -> [Entry] in
            let paired = Set(node.sources.values.compactMap { $0.svnSource?.name })
            return node.sources.keys.sorted().compactMap { name in
                guard !paired.contains(name), let schedule = node.schedules[name], schedule.expression != nil else {
                    return nil
                }
                return Entry(node: node.name, source: name, schedule: schedule)
            }
        }
    }

    /// The decision for a source whose last handled slot is `last`, at `now`.
    static func decide(
        _ schedule: SourceSchedule, last: Date?, now: Date, defaults: SiteConfiguration.ScheduleDefaults
    ) -> Decision {
        guard let last else { return .start(now) }
        // The slots since the last one handled, up to now: only the latest counts. A frequent
        // schedule after a long absence skips ahead to the slots that can still run.
        let window = max(onTime, defaults.catchUp ? defaults.catchUpWithin : onTime)
        var latest: Date?
        var at = last
        var steps = 0
        while let next = schedule.nextFire(after: at), next <= now {
            latest = next
            at = next
            steps += 1
            if steps == 10_000 { at = max(at, now.addingTimeInterval(-window - onTime)) }
        }
        guard let latest else { return .none }
        let age = now.timeIntervalSince(latest)
        if age <= onTime { return .fire(slot: latest, late: false) }
        if defaults.catchUp && age <= defaults.catchUpWithin { return .fire(slot: latest, late: true) }
        return .miss(slot: latest)
    }

    public func run() async throws {
        logger.info("scheduler started", metadata: ["scm.sources": "\(Self.entries(site).count)"])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Each look reads the site as it is now: a reload's schedules apply at the next.
                let entries = Self.entries(site)
                var next: Date?
                do { next = try await look(entries) } catch {
                    logger.error("the scheduler's look failed", metadata: ["scm.error": "\(error)"])
                }
                let now = wallClock.currentDate
                let seconds = min(Self.longestSleep, max(0.05, (next ?? .distantFuture).timeIntervalSince(now)))
                // Cancelled: shutting down.
                do { try await clock.sleep(for: .milliseconds(Int64(seconds * 1000))) } catch { return }
            }
        }
    }

    /// One look at every source: fires what is due (as one run), records it; returns the next
    /// fire time.
    func look(_ entries: [Entry]) async throws -> Date? {
        let now = wallClock.currentDate
        let states = try await catalog.scheduleStates()
        var next: Date?
        var due: [(entry: Entry, slot: Date, late: Bool)] = []
        for entry in entries {
            let state = states[entry.key]
            var handled = state?.lastSlot ?? now
            switch Self.decide(entry.schedule, last: state?.lastSlot, now: now, defaults: site.schedule) {
            case .none:
                break
            case .start(let at):
                try await catalog.recordSchedule(
                    ScheduleState(node: entry.node, source: entry.source, lastSlot: at, outcome: "first seen"))
            case .fire(let slot, let late):
                due.append((entry, slot, late))
                handled = slot
            case .miss(let slot):
                logger.warning(
                    "a scheduled backup was missed while the hub was down",
                    metadata: ["scm.node": "\(entry.node)", "scm.source": "\(entry.source)", "scm.slot": "\(slot)"])
                try await catalog.recordSchedule(
                    ScheduleState(
                        node: entry.node, source: entry.source, lastSlot: slot,
                        outcome: "missed: the hub was down past catch_up_within"))
                handled = slot
            }
            if let fire = entry.schedule.nextFire(after: max(handled, now)) {
                next = min(next ?? fire, fire)
            }
        }
        if !due.isEmpty { try await fire(due, now: now) }
        if let nightly = try await nightly(now: now, states: states) { next = min(next ?? nightly, nightly) }
        return next
    }

    /// The key of a node's nightly checks in the schedule state (no source is named so: names
    /// have no parentheses).
    static func nightlyKey(_ node: String) -> String { node + "/(nightly)" }

    /// The verify window (`[verify] window`, in `[schedule]`'s zone) that began last at or before
    /// `now`: its start and end.
    static func window(before now: Date, policy: SiteConfiguration.VerifyPolicy, zone: TimeZone) -> (
        start: Date, end: Date
    ) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        func start(on day: Date) -> Date {
            let midnight = calendar.startOfDay(for: day)
            return calendar.date(
                bySettingHour: policy.windowStart / 60 % 24, minute: policy.windowStart % 60, second: 0, of: midnight)
                ?? midnight.addingTimeInterval(TimeInterval(policy.windowStart * 60))
        }
        var begin = start(on: now)
        if begin > now { begin = start(on: calendar.date(byAdding: .day, value: -1, to: begin) ?? begin) }
        let length = (policy.windowEnd - policy.windowStart + 1440) % 1440
        return (begin, begin.addingTimeInterval(TimeInterval(length * 60)))
    }

    /// Each night at the start of the verify window, for every node of the site: an inventory
    /// (a copy the catalog lists that the node lacks becomes missing and is sent again; a file
    /// it does not know is reported, never deleted), then a verify of the copies verified
    /// longest ago, as many as `[verify] budget` allows. A night the hub missed entirely is
    /// recorded, not made up. Returns the next window's start.
    func nightly(now: Date, states: [String: ScheduleState]) async throws -> Date? {
        guard !site.verify.off, let zone = TimeZone(identifier: site.schedule.timeZone) else { return nil }
        let window = Self.window(before: now, policy: site.verify, zone: zone)
        for node in site.nodes.keys.sorted() {
            let key = Self.nightlyKey(node)
            let last = states[key]?.lastSlot
            if let last, last >= window.start { continue }
            var state = ScheduleState(node: node, source: "(nightly)", lastSlot: window.start, outcome: "")
            if now >= window.end {
                state.outcome = last == nil ? "first seen" : "missed: the hub was down during the verify window"
            } else {
                state.outcome = try await queueNightly(node)
                state.firedAt = now
            }
            try await catalog.recordSchedule(state)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let tomorrow =
            calendar.date(byAdding: .day, value: 1, to: window.start) ?? window.start.addingTimeInterval(86_400)
        return Self.window(before: tomorrow.addingTimeInterval(60), policy: site.verify, zone: zone).start
    }

    /// Queues `node`'s inventory and budgeted verify; what it did, as the slot's outcome.
    private func queueNightly(_ node: String) async throws -> String {
        var done: [String] = []
        do {
            let inventory = try await submissions.submit(SubmitTaskRequest(kind: .inventory, node: node))
            done.append("queued inventory task \(inventory.id)")
            var request = SubmitTaskRequest(kind: .verify, node: node)
            request.olderThanDays = 0
            request.budgetBytes = site.verify.budget
            let verify = try await submissions.submit(request)
            done.append("verify task \(verify.id) of \(verify.artifacts?.count ?? 0) copies")
        } catch let error as BackupError where error.code == .nothingDue {
            done.append("nothing to verify")
        } catch let error as BackupError {
            logger.error(
                "nightly checks could not be queued", metadata: ["scm.node": "\(node)", "scm.error": "\(error)"])
            done.append("failed: \(error.message)")
        }
        logger.info("nightly checks queued", metadata: ["scm.node": "\(node)", "scm.outcome": "\(done)"])
        return done.joined(separator: ", ")
    }

    /// Starts one run of the sources due, and records each one's slot with what became of it.
    private func fire(_ due: [(entry: Entry, slot: Date, late: Bool)], now: Date) async throws {
        var outcomes: [String: (task: Int64?, outcome: String)] = [:]
        do {
            let run = try await runs.start(
                due.map { Runs.Selected(node: $0.entry.node, source: $0.entry.source) }, trigger: .schedule,
                slot: due.map(\.slot).min())
            for source in run.sources {
                let key = source.node + "/" + source.source
                if let task = source.backupTask {
                    let late = due.first { $0.entry.key == key }?.late == true
                    outcomes[key] = (
                        task,
                        "queued task \(task) (run \(run.id))"
                            + (late ? " (the slot was missed while the hub was down; caught up)" : "")
                    )
                } else {
                    outcomes[key] = (nil, "skipped: still running")
                    logger.notice(
                        "scheduled backup skipped: the previous one still runs",
                        metadata: [
                            "scm.node": "\(source.node)", "scm.source": "\(source.source)", "scm.run": "\(run.id)",
                        ])
                }
            }
        } catch let error as BackupError {
            // Recorded with the slot, which is not tried again; the next slot is.
            logger.error("scheduled run could not be started", metadata: ["scm.error": "\(error)"])
            for d in due { outcomes[d.entry.key] = (nil, "failed: \(error.message)") }
        }
        for d in due {
            let outcome = outcomes[d.entry.key] ?? (nil, "failed: the run did not list it")
            try await catalog.recordSchedule(
                ScheduleState(
                    node: d.entry.node, source: d.entry.source, lastSlot: d.slot,
                    firedAt: outcome.task == nil ? nil : now, task: outcome.task, outcome: outcome.outcome))
        }
    }
}

extension Scheduler {
    /// Every source's schedule as `GET /v1/schedules` shows it, at `now`.
    static func list(_ site: SiteConfiguration, states: [String: ScheduleState], now: Date) -> [ScheduleInfo] {
        site.nodes.values.sorted { $0.name < $1.name }.flatMap { node -> [ScheduleInfo] in
            let pairedBy = Dictionary(
                node.sources.values.compactMap { t in t.svnSource.map { ($0.name, t.name) } },
                uniquingKeysWith: { first, _ in first })
            return node.sources.keys.sorted().compactMap { name -> ScheduleInfo? in
                guard let schedule = node.schedules[name] else { return nil }
                let state = states[node.name + "/" + name]
                let with = pairedBy[name]
                let after = max(state?.lastSlot ?? now, now)
                return ScheduleInfo(
                    node: node.name, source: name, schedule: schedule.expression?.text ?? "off",
                    timeZone: schedule.zoneName, jitterSeconds: schedule.jitterSeconds,
                    nextFire: with == nil ? schedule.nextFire(after: after) : nil, backedUpWith: with,
                    lastSlot: state?.lastSlot, lastOutcome: state?.outcome, lastTask: state?.task)
            }
        }
    }
}
