import BackupClient
import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's coordinator session: dials the coordinator, registers (with the data port's
/// port once it listens), sends heartbeats, long-polls for tasks, runs them while renewing
/// their lease, and reports results. It reconnects with exponential backoff and jitter. On
/// graceful shutdown (SIGTERM) it leases nothing more, finishes the task in hand and reports
/// it, then returns. ``Agent`` runs it beside the ``DataPortService``.
struct AgentService: Service {
    /// The configuration as it is now (a reload replaces it; a task keeps what it started with).
    let configurations: AgentConfigurationSource
    var configuration: AgentConfiguration { configurations.current }
    let logger: Logger
    /// Where to write the data port's port once it listens; nil for nowhere.
    let dataPortFile: String?
    /// The data port's revocation list, which the coordinator's answers extend.
    let dataPortState: DataPortState
    /// Where the data port announces its port; nil without a data port.
    let announcement: DataPortAnnouncement?
    /// The hub's clock minus this agent's, measured at registration and at every heartbeat
    /// (the hub's `serverTime`): lease expiries, stamped by the hub's clock, are read with it,
    /// so a skewed agent clock does not make it renew too late.
    let hubOffset = LockedBox<TimeInterval>(0)
    /// The epoch of the catalog the agent last registered with (``RegisterResponse/catalogEpoch``).
    let catalogEpoch = LockedBox<String?>(nil)
    /// When a call to the hub last succeeded (by this agent's clock); the fallback judges by it.
    let lastContact = LockedBox<Date?>(nil)
    /// The sources a backup (a task's or the agent's own) is running for: one source is never
    /// backed up twice at once (a backup removes the staging leftovers of its source).
    let busySources = LockedBox<Set<String>>([])
    /// The last backup the agent made on its own, per source, and when it ended.
    let ownBackups = LockedBox<[String: (outcome: TaskOutcome, at: Date)]>([:])

    /// Runs `body` holding `source` (nil: nothing to hold), waiting while another backup of it
    /// runs; `body` is told since when it waited (nil when it did not).
    func holding<T: Sendable>(_ source: String?, _ body: (Date?) async throws -> T) async throws -> T {
        guard let source else { return try await body(nil) }
        var waitedSince: Date?
        while !busySources.withLock({ $0.insert(source).inserted }) {
            waitedSince = waitedSince ?? Date()
            try await Task.sleep(for: .milliseconds(500))
        }
        do {
            let result = try await body(waitedSince)
            busySources.withLock { _ = $0.remove(source) }
            return result
        } catch {
            busySources.withLock { _ = $0.remove(source) }
            throw error
        }
    }

    public func run() async throws {
        // An agent never works in a store that is not its own (an unmounted disk's mount point,
        // another disk): it refuses to start, and each task checks again (a disk can go later).
        let store = try configuration.store()
        // No backup of this agent runs yet: what crashed ones left is garbage.
        do {
            for path in try store.removeCrashedBackupWork(node: configuration.node) {
                logger.notice("removed what a crashed backup left", metadata: ["scm.path": "\(path)"])
            }
        } catch {
            logger.warning("what crashed backups left cannot be removed", metadata: ["scm.error": "\(error)"])
        }
        removeAbandonedPartials()
        let stopping = StopFlag()
        let dataPort = dataPortState
        var port: Int?
        if let announcement {
            guard let listening = await announcement.port() else { return }  // The data port stopped first.
            port = listening
            if let dataPortFile {
                try FileSystem.writeAtomically(Array("\(listening)\n".utf8), to: dataPortFile, mode: 0o644)
            }
        }
        let registeredPort = port
        let hubOffset = hubOffset
        let started = Date()
        let fallback = Task { await fallbackLoop(stopping: stopping, since: started) }
        let watch = Task { await watchHub(stopping: stopping, since: started) }
        defer {
            fallback.cancel()
            watch.cancel()
        }
        try await withGracefulShutdownHandler {
            try await CoordinatorClient.with(configuration.coordinator) { client in
                var backoff = Backoff()
                while !stopping.isSet {
                    do {
                        let registered = try await register(client, dataPort: registeredPort)
                        hubOffset.withLock { $0 = registered.serverTime.timeIntervalSinceNow }
                        catalogEpoch.withLock { $0 = registered.catalogEpoch }
                        keepRevocations(registered.revokedSerials, dataPort)
                        keepPlan(registered.fallback)
                        try await deliverJournal(client)
                        try await deliverFallbacks(client)
                        backoff.reset()
                        try await serve(
                            client, heartbeatSeconds: registered.heartbeatSeconds, maxTasks: registered.maxTasks ?? 1,
                            stopping: stopping, dataPort: dataPort)
                    } catch {
                        if stopping.isSet { break }
                        logger.warning("coordinator connection failed", metadata: ["scm.error": "\(error)"])
                        try await Task.sleep(for: backoff.next())
                    }
                }
            }
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    /// Adds the coordinator's revoked serials to the store's list (which only grows) and to
    /// the data port's.
    private func keepRevocations(_ serials: [String], _ dataPort: DataPortState) {
        var merged = Set(serials.map { $0.lowercased() })
        do { merged = try configuration.store().mergeRevokedSerials(merged) } catch {
            // The data port still gets the coordinator's list; the next answer tries the disk again.
            logger.error("the revocation list cannot be kept in the store", metadata: ["scm.error": "\(error)"])
        }
        let union = merged
        dataPort.revoked.withLock { $0 = ($0 ?? []).union(union) }
    }

    /// Sends `[notify]`'s one notice when no call to the hub has succeeded for its
    /// `hub_silent_after`, and one when the hub answers again (``HubSilenceNotice``).
    private func watchHub(stopping: StopFlag, since start: Date) async {
        var silentSince: Date?
        // A notice that could not be sent is tried again a minute later.
        var nextTry = Date.distantPast
        while !stopping.isSet && !Task.isCancelled {
            // Cancelled: the agent is stopping.
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
            guard let notify = configuration.notify, Date() >= nextTry else { continue }
            nextTry = Date().addingTimeInterval(60)
            let last = lastContact.withLock { $0 } ?? start
            let now = Date()
            if silentSince == nil, now.timeIntervalSince(last) > notify.after {
                let body = """
                    The agent of \(configuration.node) has had no answer from the hub at \(configuration.coordinator.url) since \(ISO8601DateFormatter().string(from: last)).

                    It keeps backing up its scheduled sources on its own (fallback) and reports them when the hub is back; nothing is purged or transferred meanwhile. The hub's own alerts are not running, or cannot reach this node.

                    """
                if await sendNotice(
                    notify, subject: "[scm-backup] the hub is silent for \(configuration.node)", body: body)
                {
                    silentSince = last
                    nextTry = .distantPast
                }
            } else if let silent = silentSince, last > silent {
                let body =
                    "The hub at \(configuration.coordinator.url) answers \(configuration.node) again (\(ISO8601DateFormatter().string(from: last))).\n"
                if await sendNotice(
                    notify, subject: "[scm-backup] the hub answers \(configuration.node) again", body: body)
                {
                    silentSince = nil
                    nextTry = .distantPast
                }
            } else {
                nextTry = .distantPast
            }
        }
    }

    /// Runs the notice command with the mail on stdin; false (logged) when it failed, to be tried again.
    private func sendNotice(_ notify: HubSilenceNotice, subject: String, body: String) async -> Bool {
        let mail = MailMessage(from: notify.from, to: notify.to, subject: subject, body: body).render(date: Date())
        let logger = logger
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                // At most 30 s, without a shell (``ProcessGroupRunner/deliver(_:through:)``).
                if let error = ProcessGroupRunner.deliver(Array(mail.utf8), through: notify.command) {
                    logger.error("notice not sent", metadata: ["scm.subject": "\(subject)", "scm.error": "\(error)"])
                    continuation.resume(returning: false)
                } else {
                    logger.notice("notice sent", metadata: ["scm.subject": "\(subject)"])
                    continuation.resume(returning: true)
                }
            }
        }
    }

    /// Keeps the hub's newest fallback plan on disk, and notes the contact.
    private func keepPlan(_ plan: FallbackPlan?) {
        lastContact.withLock { $0 = Date() }
        guard let plan, plan.node == configuration.node else { return }
        do { try FallbackKeeper(configuration).keep(plan) } catch {
            logger.error("the fallback plan cannot be kept", metadata: ["scm.error": "\(error)"])
        }
    }

    /// Reports what this agent made on its own while the hub was away; a report stays
    /// journalled until the hub took it (or refused it for good: a source it no longer has).
    private func deliverFallbacks(_ client: CoordinatorClient) async throws {
        let keeper = FallbackKeeper(configuration)
        for (path, report) in try keeper.pending() {
            let metadata: Logger.Metadata = ["scm.source": "\(report.source)", "scm.slot": "\(report.slot)"]
            do {
                let answer = try await client.send(
                    "POST", "/v1/agents/fallback", body: report, as: FallbackAnswer.self)
                if let signed = answer.receipts, !signed.isEmpty {
                    let receipts = try Receipts(configuration, logger: logger)
                    let store = try configuration.store()
                    for receipt in signed { receipts.keep(receipt, store: store) }
                }
                logger.notice(
                    "own backup reported to the hub",
                    metadata: metadata.merging([
                        "scm.cancelled": "\(answer.cancelled ?? [])",
                        "scm.transfers": "\(answer.transfers?.count ?? 0)",
                    ]) { $1 })
            } catch let error as BackupError where error.code == .unknownSource {
                logger.warning(
                    "own backup refused by the hub", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
            }
            try FileManager.default.removeItem(atPath: path)
        }
    }

    /// Every few seconds: backs up each planned source whose slot passed with the hub away
    /// (``FallbackKeeper/due(_:state:lastContact:now:grace:since:)``), one at a time.
    private func fallbackLoop(stopping: StopFlag, since start: Date) async {
        while !stopping.isSet && !Task.isCancelled {
            // Cancelled: the agent is stopping.
            do { try await Task.sleep(for: .seconds(2)) } catch { return }
            let configuration = configuration
            guard configuration.fallback else { continue }
            let keeper = FallbackKeeper(configuration)
            do {
                guard let plan = try keeper.plan() else { continue }
                var state = try keeper.state()
                let due = try FallbackKeeper.due(
                    plan, state: state, lastContact: lastContact.withLock { $0 }, now: Date(),
                    grace: configuration.fallbackGrace, since: start)
                for (entry, slot) in due where !stopping.isSet {
                    let name = entry.definition.name
                    let metadata: Logger.Metadata = ["scm.source": "\(name)", "scm.slot": "\(slot)"]
                    if let free = FallbackKeeper.freeShare(of: configuration.storePath),
                        free < configuration.fallbackMinFree
                    {
                        let why =
                            "skipped: the store '\(configuration.storePath)' has \(Int(free * 100)) % free, below fallback_min_free (\(Int(configuration.fallbackMinFree * 100)) %)"
                        logger.error(
                            "no backup on its own: the disk is nearly full",
                            metadata: metadata.merging(["scm.reason": "\(why)"]) { $1 })
                        state.handled[name] = slot
                        state.outcomes[name] = why
                        try keeper.write(state)
                        continue
                    }
                    // A backup task of the source still runs (the hub went away during it): next look.
                    guard busySources.withLock({ $0.insert(name).inserted }) else { continue }
                    logger.warning(
                        "the hub is away past fallback_grace: backing up on its own", metadata: metadata)
                    let progress = ProgressBox()
                    let logger = logger
                    let definition = entry.definition
                    let outcome: TaskOutcome
                    do {
                        outcome = try await TaskRunner(configuration: configuration, progress: progress, logger: logger)
                            .runOffPool { configuration, progress, logger in
                                try TaskRunner.backup(definition, configuration, progress, logger)
                            }
                    } catch {
                        // Counted as handled, not tried every look: the next slot tries again.
                        busySources.withLock { _ = $0.remove(name) }
                        logger.error(
                            "the backup on its own failed", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 }
                        )
                        state.handled[name] = slot
                        state.outcomes[name] = "failed: \(error)"
                        try keeper.write(state)
                        continue
                    }
                    ownBackups.withLock { $0[name] = (outcome, Date()) }
                    busySources.withLock { _ = $0.remove(name) }
                    let report = FallbackReport(
                        source: name, slot: slot, madeAt: Date(), detail: outcome.detail,
                        artifacts: outcome.artifacts ?? ArtifactReport(complete: false, copies: []))
                    // Journalled before the slot counts as handled: a crash between runs it again, never loses it.
                    try keeper.journal(report)
                    state.handled[name] = slot
                    state.outcomes[name] = "made: \(outcome.detail)"
                    try keeper.write(state)
                    logger.notice(
                        "backed up on its own; reported when the hub is back",
                        metadata: metadata.merging(["scm.detail": "\(outcome.detail)"]) { $1 })
                }
                try await fallbackVerify(plan, keeper: keeper, configuration: configuration, since: start)
            } catch {
                logger.error("the fallback failed", metadata: ["scm.error": "\(error)"])
            }
        }
    }

    /// The nightly verify on its own, when its window passed with the hub away: a budget's worth
    /// of this store's copies, judged by their sidecars (a mutant is quarantined), reported on
    /// the hub's return like a verify task's result. Never a purge.
    private func fallbackVerify(
        _ plan: FallbackPlan, keeper: FallbackKeeper, configuration: AgentConfiguration, since start: Date
    ) async throws {
        var state = try keeper.state()
        guard let verify = plan.verify,
            let window = try FallbackKeeper.verifyDue(
                plan, state: state, lastContact: lastContact.withLock { $0 }, now: Date(),
                grace: configuration.fallbackGrace, since: start)
        else { return }
        let store = try configuration.store()
        let batch = FallbackKeeper.verifyBatch(
            try store.scan().artifacts, after: state.verifyCursor, budget: verify.budget)
        let paths = batch.compactMap { $0.location?.relativePath }
        logger.warning(
            "the hub is away past fallback_grace: verifying on its own",
            metadata: ["scm.window": "\(window)", "scm.copies": "\(paths.count)"])
        let outcome = try await TaskRunner(configuration: configuration, progress: ProgressBox(), logger: logger)
            .runOffPool { configuration, progress, _ in
                try TaskRunner.verify(paths, references: nil, configuration, progress)
            }
        try keeper.journal(
            FallbackReport(
                kind: .verify, source: "(nightly)", slot: window, madeAt: Date(), detail: outcome.detail,
                artifacts: outcome.artifacts ?? ArtifactReport(complete: false, copies: [])))
        state.verifiedWindow = window
        state.verifyCursor = paths.last ?? state.verifyCursor
        try keeper.write(state)
        logger.notice(
            "verified on its own; reported when the hub is back", metadata: ["scm.detail": "\(outcome.detail)"])
    }

    private func register(_ client: CoordinatorClient, dataPort: Int?) async throws -> RegisterResponse {
        var total: Int64 = 0
        var free: Int64 = 0
        var fs = statvfs()
        if statvfs(configuration.storePath, &fs) == 0 {
            total = Int64(fs.f_blocks) * Int64(fs.f_frsize)
            free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        }
        let kinds = configuration.kinds
        let answer = try await client.register(
            RegisterRequest(
                version: configuration.version, storePath: configuration.storePath, diskTotal: total, diskFree: free,
                kinds: kinds, agentClock: Date().timeIntervalSince1970, dataPort: dataPort,
                // No roots: it backs up nothing, which the coordinator shows as an empty list.
                sourceRoots: (configuration.sourceRoots ?? []).map { SourceConfinement.resolve($0) ?? $0 },
                preBackupSteps: configuration.preBackupSteps.keys.sorted()))
        logger.info("registered", metadata: ["scm.node": "\(configuration.node)"])
        return answer
    }

    /// Heartbeats beside `maxTasks` lease loops (the node's `max_tasks`, told at register),
    /// until shutdown or a connection error. A loop that fails stops the others from leasing
    /// more, but each finishes and reports the task in its hands before the session ends.
    private func serve(
        _ client: CoordinatorClient, heartbeatSeconds: Int, maxTasks: Int, stopping: StopFlag, dataPort: DataPortState
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // About every ten minutes, abandoned received partials are removed.
                let beatsPerCleanup = max(1, Int(TicketLedger.keepAfterExpiry) / max(1, heartbeatSeconds))
                let setAsideEvery = max(1, 15 / max(1, heartbeatSeconds))
                var beats = 0
                while !stopping.isSet {
                    try await Task.sleep(for: .seconds(heartbeatSeconds))
                    beats += 1
                    if beats.isMultiple(of: beatsPerCleanup) { removeAbandonedPartials() }
                    var fs = statvfs()
                    let free = statvfs(configuration.storePath, &fs) == 0 ? Int64(fs.f_bavail) * Int64(fs.f_frsize) : 0
                    // The trash and the quarantine are walked about every 15 s, not every beat
                    // (a big night's purge leaves thousands of files there for trash_hours); the
                    // beats between send none and the catalog keeps the last.
                    var (trash, quarantine): (Int64?, Int64?) = (nil, nil)
                    if beats % setAsideEvery == 1 || setAsideEvery == 1 {
                        (trash, quarantine) = setAsideBytes()
                    }
                    do {
                        let answer = try await client.send(
                            "POST", "/v1/agents/heartbeat",
                            body: HeartbeatRequest(
                                diskFree: free, agentClock: Date().timeIntervalSince1970, trashBytes: trash,
                                quarantineBytes: quarantine),
                            as: RegisterResponse.self)
                        hubOffset.withLock { $0 = answer.serverTime.timeIntervalSinceNow }
                        keepRevocations(answer.revokedSerials, dataPort)
                        keepPlan(answer.fallback)
                    } catch {
                        // The lease loop notices a lost hub by itself; a task in hand goes on
                        // (its renewals decide), so a missed heartbeat does not end the session.
                        logger.warning("heartbeat failed", metadata: ["scm.error": "\(error)"])
                    }
                }
            }
            // The lease loops end the session: at shutdown, or with an error to reconnect after.
            let ending = StopFlag()
            let failure = await withTaskGroup(of: (any Error)?.self) { loops -> (any Error)? in
                for _ in 0..<min(max(1, maxTasks), 16) {
                    loops.addTask {
                        do {
                            try await leaseLoop(client, stopping: stopping, ending: ending)
                            return nil
                        } catch {
                            ending.set()
                            return error
                        }
                    }
                }
                var first: (any Error)?
                for await error in loops where first == nil { first = error }
                return first
            }
            group.cancelAll()
            if let failure { throw failure }
        }
    }

    /// Leases a task, runs it, reports it, and again, until shutdown or until another loop of
    /// the session ended (`ending`).
    private func leaseLoop(_ client: CoordinatorClient, stopping: StopFlag, ending: StopFlag) async throws {
        while !stopping.isSet && !ending.isSet {
            let lease = try await client.send(
                "POST", "/v1/tasks/lease",
                body: LeaseRequest(waitSeconds: configuration.leaseWaitSeconds, confirms: true),
                as: LeaseResponse.self)
            lastContact.withLock { $0 = Date() }
            guard let task = lease.task else { continue }
            if stopping.isSet || ending.isSet {
                _ = try await client.send(
                    "POST", "/v1/tasks/\(task.id)/handback",
                    body: HandBackRequest(fencingToken: task.fencingToken), as: TaskInfo.self)
                break
            }
            try await execute(task, client)
            // A task's buffers are freed now; their pages go back (``HeapTrim``).
            HeapTrim.trim()
        }
    }

    /// Bytes the store's trash and quarantine hold, for the heartbeat; one that cannot be read
    /// is logged naming the store and not reported (the catalog keeps its last value).
    private func setAsideBytes() -> (trash: Int64?, quarantine: Int64?) {
        let store = Store(root: configuration.storePath)
        func measure(_ what: String, _ body: () throws -> Int64) -> Int64? {
            do { return try body() } catch {
                logger.warning(
                    "the store's \(what) cannot be measured",
                    metadata: ["scm.store": "\(configuration.storePath)", "scm.error": "\(error)"])
                return nil
            }
        }
        return (measure("trash", store.trashBytes), measure("quarantine", store.quarantineBytes))
    }

    /// Removes the received partials no transfer can resume (``Store/removeAbandonedPartials(now:minimumAge:)``);
    /// a store that cannot be checked now is left alone and logged.
    private func removeAbandonedPartials() {
        do {
            for path in try configuration.store().removeAbandonedPartials(now: Date()) {
                logger.notice("removed an abandoned partial", metadata: ["scm.path": "\(path)"])
            }
        } catch {
            logger.warning("abandoned partials cannot be removed", metadata: ["scm.error": "\(error)"])
        }
    }

    /// Runs a task, renewing its lease a few times per lease period, then reports the result.
    private func execute(_ task: TaskInfo, _ client: CoordinatorClient) async throws {
        let metadata: Logger.Metadata = ["scm.task": "\(task.id)", "scm.kind": "\(task.kind.rawValue)"]
        // The lease came with a confirmation window (this agent asked for one): confirm it
        // before any work, which extends it to the full lease.
        let confirmed: TaskInfo
        do {
            confirmed = try await client.send(
                "POST", "/v1/tasks/\(task.id)/renew",
                body: RenewRequest(fencingToken: task.fencingToken, progressed: true),
                as: TaskInfo.self)
        } catch let error as BackupError where Self.leaseRefusals.contains(error.code) {
            logger.warning(
                "lease could not be confirmed; the task is not started",
                metadata: metadata.merging(["scm.code": "\(error.code.rawValue)"]) { $1 })
            return
        }
        logger.info("task started", metadata: metadata)
        let period = max(1.0, (secondsLeft(confirmed.leaseExpiresAt) + 1) / 3)
        let progress = ProgressBox()
        let ticket = LockedBox<String?>(confirmed.transfer?.ticket ?? task.transfer?.ticket)
        let cancellation = WorkCancellation()
        // The lease as this agent knows it, on the monotonic clock: re-armed by each renewal.
        let clock = ContinuousClock()
        let leaseEnd = LockedBox(
            clock.now.advanced(by: .milliseconds(Int64(1000 * secondsLeft(confirmed.leaseExpiresAt)))))
        // Node-local work survives a hub that is away or a lease that ran out: its result is
        // journalled and its facts recorded late; moving or deleting copies stops at once.
        let nodeLocal = Self.nodeLocalKinds.contains(task.kind)
        let journal = ResultJournal(configuration)
        if task.kind == .backup, let done = previouslyMade(task, journal) {
            // The same backup came back (its lease ran out while the hub was away): the
            // artifact it made is reported under the new lease, not made again.
            logger.notice(
                "task done before; reporting its journalled result",
                metadata: metadata.merging(["scm.token": "\(done.fencingToken)"]) { $1 })
            var report = done.result
            report.fencingToken = task.fencingToken
            try await deliver(task, report, journal, metadata, client)
            return
        }
        if task.kind == .backup, let definition = task.definition,
            let made = TaskRunner.madeSince(
                // Two seconds' allowance: the wire's times are whole seconds, the offset too.
                definition, since: task.createdAt.addingTimeInterval(-hubOffset.withLock { $0 } - 2),
                configuration: configuration, journal: journal, logger: logger)
        {
            logger.notice("a backup made before was never reported; reporting it", metadata: metadata)
            let report = ResultRequest(
                fencingToken: task.fencingToken, error: nil, detail: made.detail, artifacts: made.artifacts)
            try await deliver(task, report, journal, metadata, client)
            return
        }
        let offlineLimit = configuration.offlineWorkSeconds
        // A backup holds its source against the agent's own backup of it (``holding(_:_:)``).
        let ownSource = task.kind == .backup ? task.definition?.name : nil
        let outcome: Result<TaskOutcome, any Error> = await withTaskGroup(of: Result<TaskOutcome, any Error>?.self) {
            group in
            group.addTask {
                await Result(catching: {
                    task.kind == .transfer
                        ? try await TransferRunner(
                            configuration: configuration, client: client, progress: progress, ticket: ticket,
                            logger: logger
                        ).run(task)
                        : task.kind == .recover
                            ? try await RecoverRunner(configuration: configuration, progress: progress, logger: logger)
                                .run(task)
                            : try await holding(ownSource) { waitedSince in
                                // The agent's own backup of this source ended while the task waited: it answers it.
                                if let waitedSince, let ownSource, let made = ownBackups.withLock({ $0[ownSource] }),
                                    made.at >= waitedSince
                                {
                                    return made.outcome
                                }
                                return try await TaskRunner(
                                    configuration: configuration, progress: progress, logger: logger,
                                    cancellation: cancellation
                                ).run(task)
                            }
                })
            }
            group.addTask {
                var lastBytes: Int64?
                /// Stops the work: the lease is gone, and another agent may hold the task now.
                func lose(_ reason: String) -> Result<TaskOutcome, any Error> {
                    logger.warning(
                        "lease lost; stopping the task", metadata: metadata.merging(["scm.reason": "\(reason)"]) { $1 })
                    cancellation.cancel(reason: "the lease of task \(task.id) was lost: \(reason)")
                    return .failure(LeaseLost(task: task.id, reason: reason))
                }
                while !Task.isCancelled {
                    // The sleep is cancelled when the work ends; that is the normal way out.
                    try? await Task.sleep(for: .seconds(period))
                    if Task.isCancelled { break }
                    // A transfer has progressed only when bytes moved; other tasks work in
                    // steps too long to count (a big hotcopy) and always say they progressed.
                    let now = progress.current
                    let progressed = task.kind != .transfer || now.bytesDone != lastBytes
                    lastBytes = now.bytesDone
                    do {
                        let renewed = try await client.send(
                            "POST", "/v1/tasks/\(task.id)/renew",
                            body: RenewRequest(fencingToken: task.fencingToken, progressed: progressed, progress: now),
                            as: TaskInfo.self, timeout: .milliseconds(Int64(period * 1000)))
                        if let fresh = renewed.transfer?.ticket { ticket.withLock { $0 = fresh } }
                        let left = secondsLeft(renewed.leaseExpiresAt)
                        leaseEnd.withLock { $0 = clock.now.advanced(by: .milliseconds(Int64(1000 * left))) }
                    } catch let error as BackupError where Self.leaseRefusals.contains(error.code) {
                        if nodeLocal && !Self.endRefusals.contains(error.code) {
                            // Nobody else can hold this node's backup: finish it and report late.
                            logger.warning(
                                "lease refused; finishing the node's own task to report it late",
                                metadata: metadata.merging(["scm.code": "\(error.code.rawValue)"]) { $1 })
                            return nil
                        }
                        return lose("the coordinator refused the renewal (\(error.code)): \(error.message)")
                    } catch {
                        // The hub may be briefly away: the work goes on while the lease lasts
                        // (and node-local work for `offline_work_seconds` more).
                        logger.warning(
                            "lease renewal failed", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
                        let grace: Duration = nodeLocal ? .milliseconds(Int64(offlineLimit * 1000)) : .zero
                        if clock.now >= leaseEnd.withLock({ $0 }).advanced(by: grace) {
                            return lose("no renewal got through before the lease ran out (\(error))")
                        }
                    }
                }
                return nil
            }
            // The first to finish decides: the work's result, or the lost lease.
            var result: Result<TaskOutcome, any Error>?
            for await value in group {
                if let value, result == nil {
                    result = value
                    group.cancelAll()
                }
            }
            return result ?? .failure(CancellationError())
        }
        let report: ResultRequest
        switch outcome {
        case .success(let done):
            var result = ResultRequest(
                fencingToken: task.fencingToken, error: nil, detail: done.detail, artifacts: done.artifacts)
            result.sealed = done.sealed
            report = result
            logger.info("task succeeded", metadata: metadata)
        case .failure(let error):
            report = ResultRequest(fencingToken: task.fencingToken, failure: TaskFailure(error))
            logger.warning("task failed", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
        }
        try await deliver(task, report, journal, metadata, client)
    }

    /// Journals a task's result (fsynced), then sends it; a result the hub did not take for
    /// good stays journalled and the session reconnects (``deliverJournal(_:)`` sends it again).
    private func deliver(
        _ task: TaskInfo, _ report: ResultRequest, _ journal: ResultJournal, _ metadata: Logger.Metadata,
        _ client: CoordinatorClient
    ) async throws {
        var entry = ResultJournal.TaskEntry(
            taskId: task.id, kind: task.kind, fencingToken: report.fencingToken, finishedAt: Date(), delivered: false,
            result: report, epoch: catalogEpoch.withLock { $0 })
        do { try journal.write(entry) } catch {
            // Unjournalled, the result is still sent; only a crash before the answer loses it.
            logger.error(
                "the result cannot be journalled", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
        }
        try await send(&entry, client, journal, metadata)
    }

    /// Sends every journalled result not yet delivered, then the data port's copies reports,
    /// oldest first; drops what is past its week.
    private func deliverJournal(_ client: CoordinatorClient) async throws {
        let journal = ResultJournal(configuration)
        let entries: [ResultJournal.TaskEntry]
        let copies: [(path: String, entry: ResultJournal.CopiesEntry)]
        do {
            for lost in try journal.prune() {
                logger.error(
                    "a journalled result was never delivered and is dropped after a week",
                    metadata: ["scm.task": "\(lost.taskId)"])
            }
            entries = try journal.tasks().filter { !$0.delivered }
            copies = try journal.copies()
        } catch {
            logger.error("the result journal cannot be read", metadata: ["scm.error": "\(error)"])
            return
        }
        let epoch = catalogEpoch.withLock { $0 }
        for var entry in entries {
            let metadata: Logger.Metadata = ["scm.task": "\(entry.taskId)", "scm.kind": "\(entry.kind.rawValue)"]
            if let epoch, entry.epoch != epoch {
                // Task ids of another catalog name other tasks here; what it made is in the store,
                // and the next inventory lists it.
                logger.notice(
                    "a journalled result of another catalog is not sent",
                    metadata: metadata.merging(["scm.epoch": "\(entry.epoch ?? "-")"]) { $1 })
                entry.delivered = true
                do { try journal.write(entry) } catch {
                    logger.warning(
                        "the result cannot be marked", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
                }
                continue
            }
            logger.info("sending a journalled result", metadata: metadata)
            try await send(&entry, client, journal, metadata)
        }
        for (path, entry) in copies {
            try await client.reportCopies(entry.report)
            try journal.remove(path)
        }
    }

    /// Sends one journalled result; marks it delivered once the hub took it or refused it for
    /// good, and rethrows anything else (the hub away, a server error) to reconnect.
    private func send(
        _ entry: inout ResultJournal.TaskEntry, _ client: CoordinatorClient, _ journal: ResultJournal,
        _ metadata: Logger.Metadata
    ) async throws {
        do {
            let answer = try await client.send(
                "POST", "/v1/tasks/\(entry.taskId)/result", body: entry.result, as: TaskInfo.self)
            if let signed = answer.receipts, !signed.isEmpty {
                // Beside the artifacts the backup made; one that is refused is logged and skipped.
                do {
                    let receipts = try Receipts(configuration, logger: logger)
                    let store = try configuration.store()
                    for receipt in signed { receipts.keep(receipt, store: store) }
                } catch {
                    logger.warning(
                        "the backup's receipts are not kept",
                        metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
                }
            }
        } catch let error as BackupError where Self.finalAnswers.contains(error.code) {
            // Refused for good (a lease that ran out, a finished task): the coordinator keeps
            // the truth and recorded what the result proves; the agent goes on.
            logger.warning("task result refused", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
        }
        entry.delivered = true
        do { try journal.write(entry) } catch {
            // Sent again after a restart, it is applied once (the hub knows the token).
            logger.warning(
                "the delivered result cannot be marked", metadata: metadata.merging(["scm.error": "\(error)"]) { $1 })
        }
    }

    /// The journalled success of a backup handed out again, while its artifacts are in the store.
    private func previouslyMade(_ task: TaskInfo, _ journal: ResultJournal) -> ResultJournal.TaskEntry? {
        let entry: ResultJournal.TaskEntry?
        do { entry = try journal.success(of: task.id) } catch {
            logger.warning("the result journal cannot be read", metadata: ["scm.error": "\(error)"])
            return nil
        }
        guard let entry, let copies = entry.result.artifacts?.copies, !copies.isEmpty,
            entry.epoch == catalogEpoch.withLock({ $0 })
        else { return nil }
        let store = Store(root: configuration.storePath)
        for copy in copies {
            let path = store.root + "/" + copy.path
            do {
                // Gone (purged, moved): made again.
                guard try FileSystem.linkStatus(path) != nil else { return nil }
            } catch {
                logger.warning(
                    "a journalled artifact cannot be looked at; the backup is made again",
                    metadata: ["scm.path": "\(path)", "scm.error": "\(error)"])
                return nil
            }
        }
        return entry
    }

    /// Kinds whose work stays on this node: nobody else can hold their lease meanwhile.
    static let nodeLocalKinds: Set<TaskKind> = [.backup, .verify, .inventory]

    /// Renewal refusals that end node-local work too: the task was cancelled or is gone.
    static let endRefusals: Set<BackupError.Code> = [.taskFinished, .unknownTask]

    /// Answers after which a result is delivered: the coordinator heard it and decided.
    static let finalAnswers: Set<BackupError.Code> = leaseRefusals.union([
        .malformedJSON, .bodyTooLarge, .invalidArgument,
    ])

    /// The codes with which the coordinator says a lease is gone.
    static let leaseRefusals: Set<BackupError.Code> = [
        .staleFencingToken, .notLeaseHolder, .leaseExpired, .noProgress, .taskFinished, .unknownTask,
    ]

    /// Seconds from now until `expiry` by the hub's clock (60 when it sent none), read with the
    /// measured offset between the clocks; the agent keeps a second of margin for the trip.
    func secondsLeft(_ expiry: Date?) -> Double {
        let offset = hubOffset.withLock { $0 }
        return max(0, (expiry.map { $0.timeIntervalSinceNow - offset } ?? 60) - 1)
    }
}

/// A flag set once by the shutdown handler and read by the loops.
final class StopFlag: @unchecked Sendable {
    // Safe: every access holds `lock`.
    private let lock = NSLock()
    private var value = false
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
