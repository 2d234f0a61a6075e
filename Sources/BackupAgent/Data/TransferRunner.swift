import AsyncHTTPClient
import BackupClient
import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import Logging
import NIOCore

/// Runs a `transfer` task on the node that opens the connection: as sender it PUTs the
/// artifact to the receiver's data port (`push`), as receiver it GETs it from the sender's
/// (`pull`). Either way it resumes from what the receiver already holds, keeps to the
/// pairing's bandwidth limit, reports progress, and cuts a transfer that moves no byte for
/// `stallSeconds`, then resumes it (three attempts within the task).
struct TransferRunner: Sendable {
    let configuration: AgentConfiguration
    let client: CoordinatorClient
    let progress: ProgressBox
    /// The newest ticket: each renewal of the lease brings a fresh one, used by the next attempt.
    let ticket: LockedBox<String?>
    let logger: Logger

    typealias Stalled = StallWatch.Stalled

    func run(_ task: TaskInfo) async throws -> TaskOutcome {
        guard let order = task.transfer, order.ticket != nil else {
            throw BackupError(.invalidArgument, "Transfer task \(task.id) carries no order or ticket.")
        }
        guard let peerURL = order.peerURL else {
            let other = order.initiator == order.sender ? order.receiver : order.sender
            throw BackupError(
                .io,
                "Node '\(other)' has no data port the coordinator knows of (is its agent running with data_listen?).")
        }
        let store = try configuration.store()
        let location = try store.location(ofRelative: order.path)
        // This node must be the party that opens the connection, and the other party a peer
        // it accepts; the connection accepts only the other party's agent certificate.
        let me = order.direction == .push ? order.sender : order.receiver
        let other = order.direction == .push ? order.receiver : order.sender
        guard me == configuration.node else {
            throw BackupError(
                .refused,
                "Transfer task \(task.id) would have node '\(configuration.node)' act as '\(me)' (\(order.direction.rawValue)); it is refused."
            )
        }
        if let peers = configuration.peers, !peers.contains(other) {
            throw BackupError(
                .refused,
                "Node '\(configuration.node)' exchanges artifacts only with its peers (\(peers.sorted().joined(separator: ", "))), not '\(other)'; transfer task \(task.id) is refused."
            )
        }
        let peer = try PinnedPeer(url: peerURL, name: other, role: .agent)
        return try await CoordinatorClient.withHTTPClient(configuration.coordinator, pinnedTo: peer) { http in
            var lastError: any Error = Stalled(seconds: configuration.stallSeconds)
            for attempt in 1...3 {
                guard let ticket = self.ticket.withLock({ $0 }) ?? order.ticket else { break }
                do {
                    return try await withStallWatch {
                        order.direction == .push
                            ? try await push(
                                order, ticket: ticket, via: http, url: peer.dialURL, store: store, location: location)
                            : try await pull(
                                order, ticket: ticket, via: http, url: peer.dialURL, store: store, location: location)
                    }
                } catch let error as Stalled {
                    logger.warning(
                        "transfer stalled; resuming",
                        metadata: ["scm.path": "\(order.path)", "scm.attempt": "\(attempt)"])
                    lastError = error
                } catch let error as PeerUnreachable {
                    logger.warning(
                        "transfer interrupted; resuming",
                        metadata: ["scm.path": "\(order.path)", "scm.attempt": "\(attempt)", "scm.error": "\(error)"])
                    lastError = error
                    try await Task.sleep(for: .seconds(attempt))
                }
            }
            throw lastError
        }
    }

    /// Runs `body`, cancelling it with ``Stalled`` when the progress box shows no new byte for
    /// `stallSeconds`.
    private func withStallWatch<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let progress = progress
        return try await StallWatch(limit: configuration.stallSeconds).run(
            progress: { progress.current.bytesDone ?? -1 }, body)
    }

    // MARK: Push

    private func push(
        _ order: TransferOrder, ticket: String, via http: HTTPClient, url: String, store: Store,
        location: ArtifactLocation
    ) async throws -> TaskOutcome {
        let path = store.path(of: location)
        let sidecar = try FileSystem.readSmallFile(path + ".dna")
        let dna = try DNA.decode(sidecar, path: path + ".dna")
        guard (dna.sha256 ?? dna.md5) == (order.sha256 ?? order.md5), dna.size == order.size else {
            throw BackupError(
                .sidecarInvalid,
                "The sidecar of '\(order.path)' on '\(order.sender)' does not match the catalog's digest and size; this copy is not sent."
            )
        }
        try Receipts(configuration, logger: logger).keep(order.receipt, store: store, path: order.path)
        let target = url + "/v1/data/" + order.path
        // What does the receiver hold already?
        var head = HTTPClientRequest(url: target)
        head.method = .HEAD
        head.headers.add(name: DataHeader.ticket, value: ticket)
        let probe = try await Self.execute(head, via: http, to: order.receiver)
        try await Self.requireSuccess(probe, what: "HEAD", of: order.path, at: order.receiver)
        if let have = probe.headers.first(name: DataHeader.have), have == (order.sha256 ?? order.md5) {
            return TaskOutcome(detail: "\(order.receiver) already holds \(order.path); no bytes moved", artifacts: nil)
        }
        let start = Int64(probe.headers.first(name: DataHeader.received) ?? "0") ?? 0
        // A partial that holds every byte but was never published (its sidecar could not be
        // written: the disk was full) has no range left to send: it starts over, like the pull.
        let offset = start < order.size ? start : 0
        progress.set("sending to \(order.receiver)", done: offset, total: order.size)
        var put = HTTPClientRequest(url: target)
        put.method = .PUT
        put.headers.add(name: DataHeader.ticket, value: ticket)
        put.headers.add(name: DataHeader.dna, value: Data(sidecar).base64EncodedString())
        put.headers.add(name: "Content-Type", value: "application/gzip")
        if offset > 0 {
            put.headers.add(name: "Content-Range", value: "bytes \(offset)-\(order.size - 1)/\(order.size)")
        }
        let fd = try BackupCore.FileDescriptor.openForSharedReading(path)
        defer { fd.closeAfterError() }
        _ = try fd.seek(to: offset)
        let chunks = FileChunks(
            fd: fd, start: offset, limit: order.bandwidthLimit, progress: progress,
            step: "sending to \(order.receiver)",
            total: order.size)
        put.body = .stream(chunks, length: .known(order.size - offset))
        let started = Date()
        let response = try await Self.execute(put, via: http, to: order.receiver, timeout: .hours(24))
        try await Self.requireSuccess(response, what: "PUT", of: order.path, at: order.receiver)
        let body = try await response.body.collect(upTo: 1 << 20)
        let result = try WireJSON.decoder().decode(ReceiveResult.self, from: Data(buffer: body))
        guard result.skipped || (result.sha256 ?? result.md5) == (order.sha256 ?? order.md5) else {
            throw BackupError(
                .archiveCorrupt,
                "'\(order.receiver)' computed \(result.sha256 ?? result.md5 ?? "-") for '\(order.path)', not \(order.sha256 ?? order.md5 ?? "-")."
            )
        }
        return TaskOutcome(
            detail: Self.summary(
                "sent", order, moved: order.size - offset, resumedFrom: offset,
                seconds: Date().timeIntervalSince(started),
                computed: result.sha256 ?? result.md5),
            artifacts: nil)
    }

    // MARK: Pull

    private func pull(
        _ order: TransferOrder, ticket: String, via http: HTTPClient, url: String, store: Store,
        location: ArtifactLocation
    ) async throws -> TaskOutcome {
        let final = store.path(of: location)
        let held = try store.held(location)
        let receipts = try Receipts(configuration, logger: logger)
        if let receipt = order.receipt {
            // Checked before any byte moves: a receipt not of this artifact voids the transfer.
            _ = try receipts.check(
                receipt, path: order.path,
                digests: ArtifactDigests(size: order.size, sha256: order.sha256, md5: order.md5))
        }
        if held == .digest(order.sha256 ?? order.md5 ?? "") {
            receipts.keep(order.receipt, store: store, path: order.path)
            return TaskOutcome(detail: "\(order.receiver) already holds \(order.path); no bytes moved", artifacts: nil)
        }
        if held != .absent {
            // Never overwritten: set aside (quarantined) when the catalog holds it as bad, else refused.
            guard order.replacesBadCopy == true else {
                throw BackupError(
                    .refused,
                    "'\(order.path)' exists on '\(order.receiver)' with another digest; it is never overwritten (a mutant is quarantined first)."
                )
            }
            let aside = try store.setAside(location)
            logger.notice(
                "a bad copy set aside for the transfer replacing it",
                metadata: ["scm.path": "\(order.path)", "scm.quarantined": "\(aside ?? "-")"])
        }
        let partial = try FileSystem.linkStatus(final + ".partial").map { Int64($0.st_size) } ?? 0
        let offset = partial < order.size ? partial : 0
        var get = HTTPClientRequest(url: url + "/v1/data/" + order.path)
        get.headers.add(name: DataHeader.ticket, value: ticket)
        if offset > 0 { get.headers.add(name: "Range", value: "bytes=\(offset)-") }
        let started = Date()
        let response = try await Self.execute(get, via: http, to: order.sender, timeout: .hours(24))
        try await Self.requireSuccess(response, what: "GET", of: order.path, at: order.sender)
        // The sidecar comes from the catalog's facts the coordinator sent, not from the sender.
        guard let facts = order.facts else {
            throw BackupError(
                .invalidArgument,
                "Transfer task of '\(order.path)' carries no facts of the artifact; the coordinator must send them.")
        }
        let dna = facts.sidecar(
            path: order.path, digests: ArtifactDigests(size: order.size, sha256: order.sha256, md5: order.md5))
        let resumed = response.status.code == 206
        let incoming = try await ReceivingArtifact.open(
            store: store, location: location, dna: dna, discardPartial: !resumed, receipt: order.receipt)
        guard incoming.received == (resumed ? offset : 0) else {
            throw BackupError(
                .io, "The partial of '\(order.path)' changed while resuming; the next attempt starts over.")
        }
        let step = "receiving from \(order.sender)"
        progress.set(step, done: incoming.received, total: order.size)
        var throttle = Throttle(limit: order.bandwidthLimit)
        for try await buffer in response.body {
            try await incoming.append(buffer)
            progress.set(step, done: incoming.received, total: order.size)
            try await throttle.pace(Int64(buffer.readableBytes))
        }
        let (published, computed) = try await incoming.finish()
        let copy = TaskRunner.copyReport(
            published.location, size: computed.size, dna: published.dna, state: .intact, verifiedAt: Date())
        return TaskOutcome(
            detail: Self.summary(
                "received", order, moved: order.size - incoming.resumedFrom, resumedFrom: incoming.resumedFrom,
                seconds: Date().timeIntervalSince(started), computed: computed.sha256 ?? computed.md5),
            artifacts: ArtifactReport(complete: false, copies: [copy]))
    }

    // MARK: Helpers

    /// Sends `request` to `node`'s data port; a connection that fails is ``PeerUnreachable``.
    static func execute(
        _ request: HTTPClientRequest, via http: HTTPClient, to node: String, timeout: TimeAmount = .seconds(60)
    ) async throws -> HTTPClientResponse {
        do { return try await http.execute(request, timeout: timeout) } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw PeerUnreachable(
                node: node, reason: CoordinatorClient.describe(error, expected: "agent '\(node)' (role agent)"))
        }
    }

    /// Throws with the peer's error code and message for a non-2xx answer.
    static func requireSuccess(_ response: HTTPClientResponse, what: String, of path: String, at node: String)
        async throws
    {
        guard !(200..<300).contains(Int(response.status.code)) else { return }
        let body = try await response.body.collect(upTo: 1 << 20)
        throw CoordinatorClient.refusal(
            status: Int(response.status.code), body: Data(buffer: body), by: "'\(node)'", of: "\(what) of '\(path)'",
            errorHeader: response.headers.first(name: ErrorResponse.header))
    }

    static func summary(
        _ verb: String, _ order: TransferOrder, moved: Int64, resumedFrom: Int64, seconds: Double, computed: String?
    ) -> String {
        let rate = seconds > 0 ? Double(moved) / seconds / 1_048_576 : 0
        return
            "\(verb) \(order.path) (\(moved) bytes\(resumedFrom > 0 ? ", resumed at byte \(resumedFrom)" : ""), \(String(format: "%.1f", rate)) MiB/s) \(order.sender) -> \(order.receiver); receiver computed \(computed ?? "-")"
    }
}

/// The other agent of a transfer could not be reached, or its certificate is not that agent's.
struct PeerUnreachable: Error, CustomStringConvertible {
    var node: String
    var reason: String
    var description: String { "Cannot reach the data port of '\(node)': \(reason)." }
}

/// Paces a transfer to `limit` bytes per second (nil: no limit).
struct Throttle {
    let limit: Int64?
    private var moved: Int64 = 0
    private let started = ContinuousClock.now

    init(limit: Int64?) { self.limit = limit }

    mutating func pace(_ bytes: Int64) async throws {
        guard let limit, limit > 0 else { return }
        moved += bytes
        let due = started + .milliseconds(Int64(Double(moved) / Double(limit) * 1000))
        if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
    }
}

/// A file's bytes from `start` to its end, 1 MiB at a time (one thread-pool read each), paced and counted.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let fd: BackupCore.FileDescriptor
    let start: Int64
    let limit: Int64?
    let progress: ProgressBox
    let step: String
    let total: Int64

    struct Iterator: AsyncIteratorProtocol {
        let chunks: FileChunks
        var done: Int64
        var throttle: Throttle

        mutating func next() async throws -> ByteBuffer? {
            let buffer = try await FileWork.read(chunks.fd, count: 1 << 20)
            let n = buffer.readableBytes
            if n == 0 { return nil }
            done += Int64(n)
            chunks.progress.set(chunks.step, done: done, total: chunks.total)
            try await throttle.pace(Int64(n))
            return buffer
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator(chunks: self, done: start, throttle: Throttle(limit: limit)) }
}
