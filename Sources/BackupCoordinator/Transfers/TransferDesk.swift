import BackupCore
import BackupProtocol
import Crypto
import Foundation
import Logging

/// Transfers: planning them from the catalog, signing their tickets when leased, the copies
/// receivers report, and repairs of quarantined mutants.
struct TransferDesk: Sendable {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let signals: TaskSignals
    let ticketKey: Curve25519.Signing.PrivateKey?
    let purgeKey: Curve25519.Signing.PrivateKey?
    /// The keys whose receipts a catalog being rebuilt believes: the ticket key's public half and
    /// `trusted_signing_keys` of `[coordinator]` (an earlier hub's).
    let receiptKeys: SigningKeyring
    /// How long a ticket or purge order is good for: twice the lease.
    let signedLifetime: TimeInterval
    let logger: Logger

    /// A task per artifact `from` holds in good state and `to` lacks intact; what `to` already
    /// holds intact is skipped without a task.
    func plan(
        _ request: TransferRequest, purpose: TransferTicket.Purpose = .transfer, operatorName: String, now: Date
    ) async throws -> TransferPlan {
        guard ticketKey != nil else {
            throw BackupError(
                .noTicketKey,
                "The coordinator has no ticket_key configured, so it cannot authorise transfers; add ticket_key to [coordinator]."
            )
        }
        for node in [request.from, request.to] where site.node(node) == nil {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        guard request.from != request.to else {
            throw BackupError(.sameNode, "A transfer needs two different nodes.")
        }
        guard site.pairing(request.from, request.to) != nil else {
            throw BackupError(
                .notPaired,
                "Nodes '\(request.from)' and '\(request.to)' are not paired in the site configuration; artifacts move only along pairings."
            )
        }
        let day = try request.stampPrefix()
        let held = try await catalog.artifacts(node: request.from, source: request.source).filter { artifact in
            day.map { artifact.stamp.hasPrefix($0 + "/") } ?? true
        }
        let (move, skipped) = TransferPlanner.plan(
            held, from: request.from, to: request.to, active: try await catalog.activeTransfers(), site: site)
        // The receiver's free space as it last reported it: what does not fit (with a margin)
        // is not queued, to fail on a full disk later; it is named instead.
        let receiver = try await catalog.nodes(now: now, onlineWithin: .infinity).first { $0.name == request.to }
        var free = receiver?.diskFree
        let margin = Self.spaceMargin(total: receiver?.diskTotal)
        var queued: [TaskInfo] = []
        var noSpace: [String] = []
        var needed: Int64 = 0
        for (artifact, held) in move {
            if let left = free, artifact.size + margin > left {
                noSpace.append(held.path)
                needed += artifact.size
                continue
            }
            free = free.map { $0 - artifact.size }
            queued.append(
                try await queue(
                    path: held.path, artifact: artifact, from: request.from, to: request.to, purpose: purpose,
                    operatorName: operatorName, now: now))
        }
        guard !noSpace.isEmpty else { return TransferPlan(queued: queued, skipped: skipped) }
        let reason =
            "'\(request.to)' reported \(receiver?.diskFree ?? 0) bytes free; \(noSpace.count) artifacts of \(needed) bytes do not fit with the margin of \(margin) bytes"
            + ((receiver?.trashBytes ?? 0) > 0
                ? " (its trash holds \(receiver!.trashBytes!) bytes of purged copies: 'scm-backup trash --node \(request.to) --empty' frees them)"
                : "")
        logger.warning(
            "transfers not queued for lack of space",
            metadata: ["scm.node": "\(request.to)", "scm.count": "\(noSpace.count)", "scm.reason": "\(reason)"])
        return TransferPlan(queued: queued, skipped: skipped, noSpace: noSpace, noSpaceReason: reason)
    }

    /// Space a receiver keeps free beyond what it is sent: 2 % of its disk, at least 64 MiB.
    static func spaceMargin(total: Int64?) -> Int64 {
        max(64 << 20, (total ?? 0) / 50)
    }

    /// Whether `node` may be sent `artifact`: its origin, or a backup node paired with it.
    func mayReceive(_ node: String, _ artifact: ArtifactInfo) -> Bool {
        TransferPlanner.mayReceive(node, artifact, site: site)
    }

    /// Queues one transfer task on the node that opens the connection (see the pairing), as a
    /// task of `run` when given.
    func queue(
        path: String, artifact: ArtifactInfo, from: String, to: String, purpose: TransferTicket.Purpose,
        operatorName: String, now: Date, triedSenders: [String]? = nil, run: Int64? = nil, maxAttempts: Int = 3
    ) async throws -> TaskInfo {
        let pairing = site.pairing(from, to)
        let initiator = pairing.map { $0.direction == .push ? $0.server : $0.backup } ?? from
        var order = TransferOrder(
            path: path, sha256: artifact.sha256, md5: artifact.md5, size: artifact.size, sender: from, receiver: to,
            direction: initiator == from ? .push : .pull, purpose: purpose, bandwidthLimit: pairing?.bandwidthLimit)
        order.triedSenders = triedSenders
        let task = try await catalog.submit(
            SubmitTaskRequest(kind: .transfer, node: initiator, source: artifact.source), transfer: order, now: now,
            maxAttempts: maxAttempts, run: run)
        await signals.signal(initiator)
        logger.info(
            "transfer queued",
            metadata: [
                "scm.task": "\(task.id)", "scm.path": "\(path)", "scm.from": "\(from)", "scm.to": "\(to)",
                "scm.purpose": "\(purpose.rawValue)", "scm.operator": "\(operatorName)",
            ])
        return task
    }

    /// Adds what a leased task needs signed, bound to this lease's fencing token: a transfer a
    /// fresh ticket (with the catalog's facts) and the other party's data URL (so does each piece
    /// of a recovery), a purge its order naming each copy's size and digest.
    func equip(_ task: TaskInfo, now: Date, leasing: Bool = false) async throws -> TaskInfo {
        if task.kind == .purge { return try await equipPurge(task, now: now) }
        if task.kind == .verify {
            // Once, with the lease (not with every renewal): what the copies must be.
            guard leasing else { return task }
            var equipped = task
            equipped.references = try await catalog.references(node: task.node, paths: task.artifacts)
            return equipped
        }
        if task.kind == .recover, var order = task.recover, ticketKey != nil {
            for index in order.pieces.indices {
                order.pieces[index].transfer = try await signed(order.pieces[index].transfer, task: task, now: now)
            }
            var equipped = task
            equipped.recover = order
            return equipped
        }
        guard task.kind == .transfer, let order = task.transfer, ticketKey != nil else { return task }
        var equipped = task
        equipped.transfer = try await signed(order, task: task, now: now)
        return equipped
    }

    /// `order` with a fresh ticket bound to `task`'s lease (with the catalog's facts and
    /// receipt) and the other party's data URL. A recover piece the task's node reads from its
    /// own store needs neither.
    private func signed(_ order: TransferOrder, task: TaskInfo, now: Date) async throws -> TransferOrder {
        guard let key = ticketKey else { return order }
        var order = order
        guard let known = try await catalog.facts(ofPath: order.path) else {
            throw BackupError(
                .notFound,
                "\(task.kind.rawValue.capitalized) task \(task.id) names '\(order.path)', which the catalog no longer lists."
            )
        }
        order.facts = known.facts
        order.receipt = try await receipt(ofPath: order.path, now: now)
        if order.purpose == .recover && order.sender == order.receiver { return order }
        // A copy the catalog holds as bad on the receiver may be set aside for this one.
        let badStates: Set<CopyState> = [.mismatch, .mutant, .quarantined, .missing]
        let receiverCopy = try await catalog.artifact(copyPath: order.path)?.copies.first { $0.node == order.receiver }
        let replaces =
            order.purpose != .recover && receiverCopy.map { badStates.contains($0.state) } == true ? true : nil
        var ticket = await TransferTicket(
            epoch: try catalog.epoch(), taskId: task.id, fencingToken: task.fencingToken, purpose: order.purpose,
            path: order.path, sha256: order.sha256, md5: order.md5, size: order.size, sender: order.sender,
            receiver: order.receiver, expiresAt: now.addingTimeInterval(signedLifetime), facts: known.facts,
            replacesBadCopy: replaces)
        ticket.receipt = order.receipt
        order.ticket = try ticket.signed(with: key)
        order.replacesBadCopy = replaces
        let other = order.initiator == order.sender ? order.receiver : order.sender
        if let port = try await catalog.dataPort(of: other), let address = site.node(other)?.addresses.first {
            order.peerURL = "https://\(address.contains(":") ? "[\(address)]" : address):\(port)"
        }
        return order
    }

    /// The catalog's receipt of the artifact at `path` (``ArtifactReceipt``), signed now with the
    /// ticket key: its reference size, digests and facts. Nil without a ticket key, or for an
    /// artifact that has no reference digest (its origin never confirmed it).
    func receipt(ofPath path: String, now: Date) async throws -> String? {
        guard let key = ticketKey, let known = try await catalog.facts(ofPath: path),
            known.sha256 != nil || known.md5 != nil
        else { return nil }
        return try await ArtifactReceipt(
            epoch: try catalog.epoch(), path: path, size: known.size, sha256: known.sha256, md5: known.md5,
            facts: known.facts, signedAt: now
        ).signed(with: key)
    }

    /// Signs a purge task's order: each named copy with the catalog's size and digest.
    private func equipPurge(_ task: TaskInfo, now: Date) async throws -> TaskInfo {
        guard let key = purgeKey else { return task }
        var copies: [PurgeOrder.Copy] = []
        for path in task.artifacts ?? [] {
            guard let known = try await catalog.facts(ofPath: path) else {
                throw BackupError(
                    .notFound, "Purge task \(task.id) names '\(path)', which the catalog no longer lists.")
            }
            copies.append(PurgeOrder.Copy(path: path, size: known.size, sha256: known.sha256, md5: known.md5))
        }
        let order = await PurgeOrder(
            epoch: try catalog.epoch(), node: task.node, taskId: task.id, fencingToken: task.fencingToken,
            expiresAt: now.addingTimeInterval(signedLifetime), copies: copies, trash: task.trash)
        var equipped = task
        equipped.purgeOrder = try order.signed(with: key)
        return equipped
    }

    /// After a verify: each copy it quarantined or found missing is repaired from a node whose
    /// copy is intact. (A mutant it could not move aside, on a read-only store, is reported and
    /// waits: no transfer overwrites it.)
    func scheduleRepairs(_ report: ArtifactReport, node: String, now: Date) async throws -> [TaskInfo] {
        guard ticketKey != nil else { return [] }
        var repairs: [TaskInfo] = []
        let active = try await catalog.activeTransfers()
        for copy in report.copies
        where (copy.state == .quarantined || copy.state == .missing) && !active.contains(node + "|" + copy.path) {
            guard let artifact = try await catalog.artifact(copyPath: copy.path), artifact.source == copy.source
            else { continue }
            if let task = try await repair(artifact, path: copy.path, on: node, excluding: [], now: now) {
                repairs.append(task)
            }
        }
        return repairs
    }

    /// After an inventory: every copy of `node` the catalog now holds as missing, and no
    /// transfer is bringing back, is sent again from a verified copy (along a pairing: a
    /// repair goes only where the artifact belongs).
    func repairMissing(on node: String, now: Date) async throws -> [TaskInfo] {
        guard ticketKey != nil else { return [] }
        var active = try await catalog.activeTransfers()
        var repairs: [TaskInfo] = []
        for artifact in try await catalog.artifactsAwaitingRepair() {
            for lost in artifact.copies
            where lost.node == node && lost.state == .missing && !active.contains(node + "|" + lost.path) {
                if let task = try await repair(artifact, path: lost.path, on: node, excluding: [], now: now) {
                    active.insert(node + "|" + lost.path)
                    repairs.append(task)
                }
            }
        }
        return repairs
    }

    /// After copies were proven intact (a verify, a received transfer): every other damaged
    /// copy of their artifacts that no transfer is bringing back now has a source, so it is
    /// repaired; a repair that found no source, or failed for good from every one, is retried
    /// this way when a verified copy appears, instead of being dropped.
    func repairWaiting(_ report: ArtifactReport, node: String, now: Date) async throws -> [TaskInfo] {
        guard ticketKey != nil else { return [] }
        let proven = Set(report.copies.filter { $0.state == .intact }.map(\.path))
        guard !proven.isEmpty else { return [] }
        var active = try await catalog.activeTransfers()
        var repairs: [TaskInfo] = []
        for artifact in try await catalog.artifactsAwaitingRepair()
        where artifact.copies.contains(where: { $0.node == node && proven.contains($0.path) && $0.state == .intact }) {
            for damaged in artifact.copies
            where damaged.node != node && (damaged.state == .quarantined || damaged.state == .missing)
                && !active.contains(damaged.node + "|" + damaged.path)
            {
                if let task = try await repair(artifact, path: damaged.path, on: damaged.node, excluding: [], now: now)
                {
                    active.insert(damaged.node + "|" + damaged.path)
                    repairs.append(task)
                }
            }
        }
        return repairs
    }

    /// After a repair failed for good: the next verified copy is tried, never one that failed.
    func repairAgain(_ failed: TransferOrder, now: Date) async throws -> TaskInfo? {
        guard ticketKey != nil, failed.purpose == .repair else { return nil }
        let tried = (failed.triedSenders ?? []) + [failed.sender]
        guard let artifact = try await catalog.artifact(copyPath: failed.path) else { return nil }
        return try await repair(artifact, path: failed.path, on: failed.receiver, excluding: tried, now: now)
    }

    /// Queues a repair of `artifact` on `node` from the copy verified most recently, except on
    /// the nodes in `excluding`; nil (and logged) when there is none.
    private func repair(
        _ artifact: ArtifactInfo, path: String, on node: String, excluding: [String], now: Date
    ) async throws -> TaskInfo? {
        let good: CopyInfo
        switch TransferPlanner.repairSource(for: artifact, on: node, excluding: excluding, site: site) {
        case .copy(let copy):
            good = copy
        case .refused:
            logger.notice(
                "repair refused: the node may not hold this artifact",
                metadata: ["scm.path": "\(path)", "scm.node": "\(node)"])
            return nil
        case .none:
            logger.error(
                "no intact copy to repair a mutant from",
                metadata: [
                    "scm.path": "\(path)", "scm.node": "\(node)", "scm.tried": "\(excluding.joined(separator: ","))",
                ])
            return nil
        }
        return try await queue(
            path: good.path, artifact: artifact, from: good.node, to: node, purpose: .repair, operatorName: "repair",
            now: now, triedSenders: excluding.isEmpty ? nil : excluding)
    }
}

extension Catalog {
    /// The paths transfers bring or brought to `receiver`, in any state: a copy that arrives
    /// after its lease ran out (the hub was down, the clocks disagree) is still that transfer's.
    func transfers(to receiver: String) async throws -> Set<String> {
        Set(
            try await transferTasks(to: receiver).compactMap { t in
                t.transfer.flatMap { $0.receiver == receiver ? $0.path : nil }
            }
        )
    }

    /// `receiver|path` of every transfer queued or leased.
    func activeTransfers() async throws -> Set<String> {
        Set(
            try await transferTasks(in: [.queued, .leased]).compactMap { t in
                t.transfer.map { $0.receiver + "|" + $0.path }
            })
    }
}
