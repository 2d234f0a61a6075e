import BackupCore
import BackupProtocol
import Foundation
import Testing

@testable import BackupCoordinator

/// The run graph's rules on snapshots, without SQLite or sockets (``RunPlanner``): a source's
/// standing from its backup task, the artifacts it made and the run's transfers; what starts now
/// within limits; offline receivers; the run's state.
struct RunPlannerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let path = "srv1/folder/conf/2027/01/15/080000/conf.tar.gz"

    func task(_ id: Int64, _ kind: TaskKind, _ state: TaskState, to receiver: String? = nil, error: String? = nil)
        -> TaskInfo
    {
        TaskInfo(
            id: id, kind: kind, node: "srv1", source: "conf", state: state, attempts: 1, fencingToken: 1,
            leaseExpiresAt: nil, lastError: error, createdAt: t0,
            transfer: receiver.map {
                TransferOrder(
                    path: path, sha256: "ab", md5: nil, size: 10, sender: "srv1", receiver: $0, direction: .push,
                    purpose: .transfer)
            })
    }

    func made(_ copies: [(String, CopyState)] = [("srv1", .intact)], confirmed: Bool = true) -> ArtifactInfo {
        ArtifactInfo(
            origin: "srv1", kind: "folder", source: "conf", stamp: "2027/01/15/080000", fileName: "conf.tar.gz",
            size: 10, sha256: "ab", md5: nil, revision: nil, created: nil,
            copies: copies.map {
                CopyInfo(node: $0.0, path: path, size: 10, state: $0.1, seenAt: t0, verifiedAt: t0, problem: nil)
            }, confirmed: confirmed)
    }

    func facts(
        backup: TaskInfo?, made: [ArtifactInfo] = [], transfers: [TaskInfo] = [], online: Set<String> = ["v1", "v2"],
        room: [String: Int] = ["v1": 2, "v2": 2], after seconds: TimeInterval = 60
    ) -> RunPlanner.Facts {
        RunPlanner.Facts(
            backup: backup, made: made, transfers: transfers, receivers: ["v1", "v2"], online: online,
            lastSeen: ["v1": t0, "v2": t0], room: room, runStartedAt: t0, now: t0.addingTimeInterval(seconds),
            offlineWait: 7 * 86_400)
    }

    var entry: RunSourceInfo {
        RunSourceInfo(node: "srv1", source: "conf", state: .backingUp, backupTask: 1, copiesWanted: 2)
    }

    @Test func aSourceWaitsForItsBackupThenSendsWhatItMadeToEveryPairedNode() {
        let waiting = RunPlanner.advance(entry, facts(backup: task(1, .backup, .leased), online: ["srv1", "v1", "v2"]))
        #expect(waiting.entry.state == .backingUp && waiting.queue.isEmpty && waiting.entry.reason == nil)
        // Its node offline: it waits, and says why.
        let away = RunPlanner.advance(entry, facts(backup: task(1, .backup, .queued), online: ["v1", "v2"]))
        #expect(away.entry.reason?.contains("srv1 is offline") == true, "\(away.entry.reason ?? "-")")

        let sent = RunPlanner.advance(entry, facts(backup: task(1, .backup, .succeeded), made: [made()]))
        #expect(sent.entry.state == .transferring)
        #expect(sent.queue.map(\.to) == ["v1", "v2"] && sent.queue.allSatisfy { $0.path == path })
        #expect(sent.entry.artifacts == [path])

        // Both arrived and were verified on arrival: the source succeeded, nothing more is queued.
        var moving = sent.entry
        moving.copies = moving.copies.enumerated().map { i, c in
            var c = c
            c.task = Int64(2 + i)
            return c
        }
        let done = RunPlanner.advance(
            moving,
            facts(
                backup: task(1, .backup, .succeeded),
                made: [made([("srv1", .intact), ("v1", .intact), ("v2", .intact)])],
                transfers: [task(2, .transfer, .succeeded, to: "v1"), task(3, .transfer, .succeeded, to: "v2")]))
        #expect(done.entry.state == .succeeded && done.queue.isEmpty)
        #expect(done.entry.verifiedCopies == 2 && done.entry.finishedAt != nil)
    }

    @Test func aFailedBackupFailsItsSourceWithTheReasonAndAFailedTransferLeavesItShort() {
        let failed = RunPlanner.advance(
            entry, facts(backup: task(1, .backup, .failed, error: "svnadmin: E000013: Can't open file")))
        #expect(failed.entry.state == .failed)
        #expect(failed.entry.reason?.contains("E000013") == true)

        var moving = entry
        moving.state = .transferring
        moving.copies = [
            RunCopy(path: path, node: "v1", state: .transferring, task: 2),
            RunCopy(path: path, node: "v2", state: .transferring, task: 3),
        ]
        let short = RunPlanner.advance(
            moving,
            facts(
                backup: task(1, .backup, .succeeded), made: [made([("srv1", .intact), ("v1", .intact)])],
                transfers: [
                    task(2, .transfer, .succeeded, to: "v1"),
                    task(3, .transfer, .failed, to: "v2", error: "peer-unreachable: connection refused"),
                ]))
        #expect(short.entry.state == .partial)

        // A push whose sender reported before its receiver did: the copy is waited for, then
        // given up on after the grace.
        var pushed = task(2, .transfer, .succeeded, to: "v1")
        pushed.endedAt = t0.addingTimeInterval(50)
        var sent = entry
        sent.state = .transferring
        sent.copies = [RunCopy(path: path, node: "v1", state: .transferring, task: 2)]
        var f = facts(backup: task(1, .backup, .succeeded), made: [made()], transfers: [pushed])
        f.receivers = ["v1"]
        let early = RunPlanner.advance(sent, f)
        #expect(early.entry.state == .transferring && early.entry.copies.first?.reason?.contains("report") == true)
        f.now = t0.addingTimeInterval(50 + RunPlanner.artifactGrace + 1)
        #expect(RunPlanner.advance(sent, f).entry.copies.first?.state == .failed)
        #expect(short.entry.reason?.contains("1 of 2 verified copies") == true)
        #expect(short.entry.reason?.contains("connection refused") == true)
    }

    @Test func anOfflineReceiverWaitsUntilOfflineWaitAndFullReceiversWaitTheirTurn() {
        let backup = task(1, .backup, .succeeded)
        let offline = RunPlanner.advance(entry, facts(backup: backup, made: [made()], online: ["v1"]))
        #expect(offline.queue.map(\.to) == ["v1"])
        #expect(offline.entry.copies.first { $0.node == "v2" }?.state == .waiting)
        #expect(offline.entry.copies.first { $0.node == "v2" }?.reason?.contains("offline") == true)
        // Eight days later it is still away: that copy fails, the source is short.
        var later = offline.entry
        later.copies = later.copies.map { c in
            var c = c
            if c.node == "v1" { c.state = .verified }
            return c
        }
        let gone = RunPlanner.advance(
            later, facts(backup: backup, made: [made()], online: ["v1"], after: 8 * 86_400))
        #expect(gone.entry.copies.first { $0.node == "v2" }?.state == .failed)
        #expect(gone.entry.state == .partial)
        // It came back before offline_wait: it is sent what it lacks.
        let back = RunPlanner.advance(later, facts(backup: backup, made: [made()], after: 3 * 86_400))
        #expect(back.queue.map(\.to) == ["v2"])
        // A receiver with its max_transfers on their way waits its turn.
        let full = RunPlanner.advance(entry, facts(backup: backup, made: [made()], room: ["v1": 0, "v2": 1]))
        #expect(full.queue.map(\.to) == ["v2"])
        #expect(full.entry.copies.first { $0.node == "v1" }?.reason?.contains("max_transfers") == true)
    }

    @Test func aTransferQueuedBeforeARestartIsFoundAgainNotQueuedTwice() {
        // The hub died after queueing the transfer, before it noted its task: the run's task
        // for that receiver and path is taken as the copy's.
        let found = RunPlanner.advance(
            entry,
            facts(
                backup: task(1, .backup, .succeeded), made: [made()],
                transfers: [task(7, .transfer, .leased, to: "v1"), task(8, .transfer, .queued, to: "v2")]))
        #expect(found.queue.isEmpty)
        #expect(found.entry.copies.map(\.task) == [7, 8])
    }

    @Test func aBadOrUnconfirmedOriginCopyIsNotSentAndAMissingArtifactFailsAfterItsGrace() {
        let mutant = RunPlanner.advance(
            entry, facts(backup: task(1, .backup, .succeeded), made: [made([("srv1", .mutant)])]))
        #expect(mutant.queue.isEmpty && mutant.entry.state == .partial)
        let unconfirmed = RunPlanner.advance(
            entry, facts(backup: task(1, .backup, .succeeded), made: [made(confirmed: false)]))
        #expect(unconfirmed.queue.isEmpty && unconfirmed.entry.copies.allSatisfy { $0.state == .failed })

        let soon = RunPlanner.advance(entry, facts(backup: task(1, .backup, .succeeded)))
        #expect(soon.entry.state == .backingUp && soon.waitingSince != nil)
        var f = facts(backup: task(1, .backup, .succeeded), after: 60 + RunPlanner.artifactGrace + 1)
        f.waitingSince = t0.addingTimeInterval(120)
        #expect(RunPlanner.advance(entry, f).entry.state == .backingUp)
        f.waitingSince = t0
        #expect(RunPlanner.advance(entry, f).entry.state == .failed)
    }

    @Test func aSourceOvertakenByANewerRunIsSupersededAndTheRunStateFollowsItsSources() {
        var f = facts(backup: task(1, .backup, .succeeded), made: [made()], online: [])
        f.newerRunMade = true
        #expect(RunPlanner.advance(entry, f).entry.state == .superseded)

        func source(_ state: RunSourceState) -> RunSourceInfo {
            RunSourceInfo(node: "srv1", source: "s", state: state, copiesWanted: 1)
        }
        #expect(RunPlanner.state(of: [source(.succeeded), source(.transferring)]) == .running)
        #expect(RunPlanner.state(of: [source(.succeeded), source(.skipped)]) == .succeeded)
        #expect(RunPlanner.state(of: [source(.succeeded), source(.failed)]) == .partial)
        #expect(RunPlanner.state(of: [source(.failed), source(.skipped)]) == .failed)
        #expect(RunPlanner.state(of: [source(.superseded), source(.succeeded)]) == .superseded)
        #expect(RunPlanner.state(of: [source(.partial)]) == .partial)
    }
}
