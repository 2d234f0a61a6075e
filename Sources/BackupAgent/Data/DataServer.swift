import BackupCore
import BackupHTTP
import BackupProtocol
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// The request context of an agent's data port.
public struct DataContext: PeerContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public var peer: PeerIdentity?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies are streamed by the handlers, never collected.
    public var maxUploadSize: Int { 0 }
}

/// What the data port shares between requests.
final class DataPortState: Sendable {
    /// Serials the site revoked, from the store's list and the coordinator's answers; nil
    /// until one of them gave a list, and until then every request is refused (fail closed).
    let revoked = LockedBox<Set<String>?>(nil)
    /// Transfers being served now.
    let active = LockedBox<Int>(0)

    init(revoked: Set<String>? = nil) {
        self.revoked.withLock { $0 = revoked }
    }

    /// Whether `serial` is revoked; throws 503 while no list is known.
    func isRevoked(_ serial: String, node: String) throws -> Bool {
        guard let serials = revoked.withLock({ $0 }) else {
            throw WireError(
                .serviceUnavailable, .noRevocationList,
                "Node '\(node)' holds no revocation list yet (none in its store, and the coordinator has not answered); it accepts no peer until it has one."
            )
        }
        return serials.contains(serial.lowercased())
    }
}

/// An agent's data port: HTTPS with mutual TLS (site CA), where artifacts move as raw bodies,
/// each request authorised by a coordinator-signed ticket (see `Protocol/transfer.md`).
///
/// - `HEAD /v1/data/<path>` (receiver): `SCM-Have` when it holds the artifact, else
///   `SCM-Received` with the bytes of a partial.
/// - `PUT /v1/data/<path>` (receiver): the bytes, from `Content-Range` start on; `SCM-DNA`.
///   Answers a ``ReceiveResult`` with the digests computed here.
/// - `GET /v1/data/<path>` (sender): the bytes, from `Range: bytes=N-` on; `SCM-DNA`.
public enum DataServer {
    static func makeApplication(
        _ configuration: AgentConfiguration, ticketKeys: SigningKeyring, state: DataPortState,
        report: @escaping @Sendable (ArtifactReport) async -> Void, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void
    ) throws -> some ApplicationProtocol {
        let router = Router(context: DataContext.self)
        // First, so that every error below it leaves as JSON; every client here holds a site certificate.
        router.add(middleware: ErrorMiddleware<DataContext>(revealsInternals: true))
        let refusals = RefusalLog()
        router.add(
            middleware: IdentityMiddleware<DataContext>(
                isRevoked: { serial in try state.isRevoked(serial, node: configuration.node) }, refusals: refusals))
        let store = Store(root: configuration.storePath)
        let node = configuration.node
        let stall = configuration.stallSeconds
        let receipts = Receipts(keys: ticketKeys, logger: logger)

        /// Checks the ticket, the parties and the path; `asReceiver` says which party this node must be.
        @Sendable func authorise(_ request: Request, _ context: DataContext, asReceiver: Bool) throws -> (
            TransferTicket, ArtifactLocation
        ) {
            let (ticket, relative) = try check(request, context, prefix: "/v1/data/", asReceiver: asReceiver)
            let location: ArtifactLocation
            do { location = try store.location(ofRelative: relative) } catch let error as BackupError {
                throw WireError(.badRequest, .badPath, error.message)
            }
            if let receipt = ticket.receipt {
                // A receipt that is not the ticket's artifact's makes the ticket void: nothing moves.
                do {
                    _ = try receipts.check(
                        receipt, path: ticket.path,
                        digests: ArtifactDigests(size: ticket.size, sha256: ticket.sha256, md5: ticket.md5))
                } catch let error as BackupError {
                    throw WireError(.forbidden, .ticketMalformed, "Ticket \(ticket.id): \(error.message)")
                }
            }
            return (ticket, location)
        }

        /// The ticket of a request under `prefix`, checked (signature, expiry, path, parties, peer
        /// and purpose), with the store-relative path the URL names. Agents move artifacts; a
        /// coordinator only reads, with a restore ticket.
        @Sendable func check(_ request: Request, _ context: DataContext, prefix: String, asReceiver: Bool) throws -> (
            TransferTicket, String
        ) {
            let peer = try context.requirePeer([.agent, .coordinator], for: "move artifacts")
            guard let header = request.headers[HTTPField.Name(DataHeader.ticket)!] else {
                throw WireError(.unauthorized, .noTicket, "A transfer needs the coordinator's ticket (SCM-Ticket).")
            }
            let ticket: TransferTicket
            do throws(TransferTicket.Refusal) {
                ticket = try TransferTicket.verify(header, keys: ticketKeys)
            } catch {
                throw WireError(.forbidden, error.code, error.message)
            }
            let relative = String(request.uri.path.dropFirst(prefix.count))
            guard (ticket.purpose == .restore) == (peer.role == .coordinator), !asReceiver || peer.role == .agent else {
                throw WireError(
                    .forbidden, .wrongRole,
                    "Ticket \(ticket.id) is a \(ticket.purpose.rawValue) ticket; a \(peer.role.rawValue) certificate may not use it here (only a hub being restored reads, with a restore ticket)."
                )
            }
            // A recovery reads into the target's scratch: its ticket never writes to a store.
            guard !(asReceiver && ticket.purpose == .recover) else {
                throw WireError(
                    .forbidden, .wrongRole,
                    "Ticket \(ticket.id) is a recover ticket: it only reads (GET) from the node that holds the copy.")
            }
            guard relative == ticket.path else {
                throw WireError(
                    .forbidden, .ticketOtherArtifact,
                    "Ticket \(ticket.id) is for '\(ticket.path)', not '\(relative)'.")
            }
            let (me, them) = asReceiver ? (ticket.receiver, ticket.sender) : (ticket.sender, ticket.receiver)
            guard me == node else {
                throw WireError(
                    .forbidden, .ticketMisaddressed,
                    "Ticket \(ticket.id) names '\(me)' as \(asReceiver ? "receiver" : "sender"), not this node '\(node)'."
                )
            }
            guard peer.name == them else {
                throw WireError(
                    .forbidden, .ticketWrongPeer,
                    "Ticket \(ticket.id) is for a transfer with '\(them)', but the caller is '\(AuditText.escape(peer.name))'."
                )
            }
            // Pinned peers are agents; the site's coordinator is known by its certificate's role.
            if let peers = configuration.peers, peer.role == .agent, !peers.contains(peer.name) {
                throw WireError(
                    .forbidden, .notAPeer,
                    "Node '\(node)' exchanges artifacts only with its peers (\(peers.sorted().joined(separator: ", "))), not '\(AuditText.escape(peer.name))'."
                )
            }
            do { _ = try configuration.store() } catch let error as BackupError {
                throw WireError(
                    .serviceUnavailable, .storeMarker, "Node '\(node)' refuses transfers: \(error.message)")
            }
            return (ticket, relative)
        }

        /// Checks and changes the store's ticket ledger; a store without a readable one refuses.
        @Sendable func ledger(_ body: (inout TicketLedger) throws -> Void) throws {
            do { try store.updateLedger(body) } catch let error as BackupError where error.code == .storeMarker {
                throw WireError(.serviceUnavailable, .noTicketLedger, error.message)
            }
        }

        /// Counts a transfer in, or answers 503 when the node serves its maximum already.
        @Sendable func admit() throws {
            let admitted = state.active.withLock { active -> Bool in
                guard active < configuration.maxTransfers else { return false }
                active += 1
                return true
            }
            guard admitted else {
                throw WireError(
                    .serviceUnavailable, .busy,
                    "Node '\(node)' is serving \(configuration.maxTransfers) transfers already; try again later.")
            }
        }
        @Sendable func release() { state.active.withLock { $0 -= 1 } }

        router.head("/v1/data/**") { request, context -> Response in
            let (ticket, location) = try authorise(request, context, asReceiver: true)
            var headers = HTTPFields()
            let final = store.path(of: location)
            if case .digest(let have) = try store.held(location), have == (ticket.sha256 ?? ticket.md5) {
                headers[HTTPField.Name(DataHeader.have)!] = have
            } else {
                let partial = try FileSystem.linkStatus(final + ".partial").map { Int64($0.st_size) } ?? 0
                headers[HTTPField.Name(DataHeader.received)!] = "\(partial)"
            }
            return Response(status: .ok, headers: headers)
        }

        router.put("/v1/data/**") { request, context -> Response in
            let (ticket, location) = try authorise(request, context, asReceiver: true)
            // The ledger refuses a spent or superseded ticket, across restarts.
            try ledger { ledger in
                if let refusal = ledger.refusal(
                    epoch: ticket.epoch, task: ticket.taskId, token: ticket.fencingToken, id: ticket.id)
                {
                    throw WireError(.conflict, refusal.code, "Ticket \(ticket.id) is refused: \(refusal.reason).")
                }
                ledger.note(
                    epoch: ticket.epoch, task: ticket.taskId, token: ticket.fencingToken, spent: nil,
                    expiresAt: ticket.expiresAt, path: ticket.path, now: Date())
            }
            var held = try store.held(location)
            if held != .absent, held != .digest(ticket.sha256 ?? ticket.md5 ?? ""), ticket.replacesBadCopy == true {
                // The catalog holds this copy as bad: it goes to quarantine, never deleted.
                let aside = try store.setAside(location)
                logger.notice(
                    "a bad copy set aside for the transfer replacing it",
                    metadata: ["scm.path": "\(ticket.path)", "scm.quarantined": "\(aside ?? "-")"])
                held = .absent
            }
            if held != .absent {
                guard held == .digest(ticket.sha256 ?? ticket.md5 ?? "") else {
                    throw WireError(
                        .conflict, .existsDifferent,
                        "'\(ticket.path)' exists on '\(node)' with another digest; it is never overwritten (a mutant is quarantined first)."
                    )
                }
                receipts.keep(ticket.receipt, store: store, path: ticket.path)
                return try JSONResponse.make(
                    ReceiveResult(
                        path: ticket.path, size: ticket.size, sha256: ticket.sha256, md5: ticket.md5, resumedFrom: 0,
                        skipped: true))
            }
            // The sidecar is written from the catalog's facts in the ticket, never from the sender.
            let dna = ticket.sidecar()
            let start = try Self.rangeStart(request.headers[.contentRange], size: ticket.size)
            try admit()
            defer { release() }
            let incoming: ReceivingArtifact
            let opening = ContinuousClock.now
            do {
                // Resuming re-hashes the partial: a second or so per GiB, on the I/O pool.
                incoming = try await ReceivingArtifact.open(
                    store: store, location: location, dna: dna, discardPartial: start == 0, receipt: ticket.receipt)
            } catch let error as BackupError {
                throw Self.wire(error)
            }
            if start > 0 {
                // The time to the first byte accepted of a resumed transfer (ops/bench/resume.sh).
                let took = ContinuousClock.now - opening
                context.logger.info(
                    "partial resumed",
                    metadata: [
                        "scm.path": "\(ticket.path)", "scm.resumedFrom": "\(incoming.received)",
                        "scm.seconds":
                            "\(String(format: "%.3f", took.inSeconds))",
                    ])
            }
            guard incoming.received == start else {
                var headers = HTTPFields()
                headers[HTTPField.Name(DataHeader.received)!] = "\(incoming.received)"
                throw WireError(
                    .rangeNotSatisfiable, .rangeMismatch,
                    "The body starts at byte \(start), but '\(node)' holds \(incoming.received) bytes of '\(ticket.path)'."
                )
            }
            // A sender that stalls is cut; the partial stays for the resumption.
            do {
                try await Self.cuttingStalls(
                    context.channel, after: stall, logger: logger, ticket: ticket, what: "sender",
                    progress: { incoming.moved.withLock { $0 } }
                ) {
                    for try await buffer in request.body { try await incoming.append(buffer) }
                }
                // Spent (fsynced) once the bytes are good, before anything is published or answered.
                let (published, computed) = try await incoming.finish {
                    try ledger { ledger in
                        ledger.note(
                            epoch: ticket.epoch, task: ticket.taskId, token: ticket.fencingToken, spent: ticket.id,
                            expiresAt: ticket.expiresAt, now: Date())
                    }
                }
                logger.info(
                    "artifact received",
                    metadata: [
                        "scm.path": "\(ticket.path)", "scm.from": "\(ticket.sender)", "scm.bytes": "\(ticket.size)",
                        "scm.resumedFrom": "\(incoming.resumedFrom)",
                    ])
                await report(
                    ArtifactReport(
                        complete: false,
                        copies: [
                            TaskRunner.copyReport(
                                published.location, size: computed.size, dna: published.dna, state: .intact,
                                verifiedAt: Date())
                        ]))
                return try JSONResponse.make(
                    ReceiveResult(
                        path: ticket.path, size: computed.size, sha256: computed.sha256, md5: computed.md5,
                        resumedFrom: incoming.resumedFrom, skipped: false))
            } catch let error as BackupError {
                throw Self.wire(error)
            }
        }

        // A hub being restored lists one source's copies here (its own self-backup), each with
        // its sidecar's digests and its receipt, to pick the one to read.
        router.get("/v1/index/**") { request, context -> Response in
            let (_, relative) = try check(request, context, prefix: "/v1/index/", asReceiver: false)
            let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else {
                throw WireError(.badRequest, .badPath, "'\(relative)' is not <origin>/<kind>/<source>.")
            }
            for (part, what) in zip(parts, ["origin", "kind", "source"]) {
                do { try StoreName.validate(part, what: what) } catch let error as BackupError {
                    throw WireError(.badRequest, .badPath, "'\(relative)': \(error.message)")
                }
            }
            let folder = store.root + "/" + relative
            let copies = try await FileWork.run { () throws -> [CopyReport] in
                guard try FileSystem.linkStatus(folder) != nil else { return [] }
                return TaskRunner.listing(try store.scan([folder]).artifacts)
            }
            return try JSONResponse.make(ArtifactReport(complete: true, copies: copies))
        }

        router.get("/v1/data/**") { request, context -> Response in
            let (ticket, location) = try authorise(request, context, asReceiver: false)
            let path = store.path(of: location)
            guard try FileSystem.linkStatus(path) != nil, try FileSystem.linkStatus(path + ".dna") != nil else {
                throw WireError(.notFound, .noArtifact, "Node '\(node)' holds no '\(ticket.path)' with its DNA.")
            }
            let sidecar = try FileSystem.readSmallFile(path + ".dna")
            let dna: DNA
            do { dna = try DNA.decode(sidecar, path: path + ".dna") } catch let error as BackupError {
                throw WireError(.conflict, .senderCopyDiffers, error.message)
            }
            guard (dna.sha256 ?? dna.md5) == (ticket.sha256 ?? ticket.md5), dna.size == ticket.size else {
                throw WireError(
                    .conflict, .senderCopyDiffers,
                    "The sidecar of '\(ticket.path)' on '\(node)' does not match the ticket's digest and size.")
            }
            receipts.keep(ticket.receipt, store: store, path: ticket.path)
            var start: Int64 = 0
            if let range = request.headers[.range] {
                guard range.hasPrefix("bytes="), range.hasSuffix("-"), let n = Int64(range.dropFirst(6).dropLast()),
                    n >= 0, n < max(ticket.size, 1)
                else {
                    throw WireError(
                        .rangeNotSatisfiable, .badRange,
                        "Range '\(range)' is not bytes=N- within \(ticket.size) bytes.")
                }
                start = n
            }
            try admit()
            let fd: BackupCore.FileDescriptor
            do {
                fd = try BackupCore.FileDescriptor.openForSharedReading(path)
                _ = try fd.seek(to: start)
            } catch {
                release()
                throw error
            }
            logger.info(
                "artifact read",
                metadata: [
                    "scm.path": "\(ticket.path)", "scm.to": "\(ticket.receiver)",
                    "scm.purpose": "\(ticket.purpose.rawValue)", "scm.from": "\(start)",
                ])
            let channel = context.channel
            var headers = HTTPFields()
            headers[HTTPField.Name(DataHeader.dna)!] = Data(sidecar).base64EncodedString()
            headers[.contentType] = "application/gzip"
            if start > 0 { headers[.contentRange] = "bytes \(start)-\(ticket.size - 1)/\(ticket.size)" }
            let body = ResponseBody(contentLength: Int(ticket.size - start)) { writer in
                defer {
                    fd.closeAfterError()
                    release()
                }
                // A reader that takes nothing for stall_seconds is cut, and its slot given back.
                let written = LockedBox<Int64>(0)
                try await Self.cuttingStalls(
                    channel, after: stall, logger: logger, ticket: ticket, what: "reader",
                    progress: { written.withLock { $0 } }
                ) {
                    while true {
                        let buffer = try await FileWork.read(fd, count: 1 << 20)
                        if buffer.readableBytes == 0 { break }
                        try await writer.write(buffer)
                        written.withLock { $0 += Int64(buffer.readableBytes) }
                    }
                }
                try await writer.finish(nil)
            }
            return Response(status: start > 0 ? .partialContent : .ok, headers: headers, body: body)
        }

        let tls = try ServerTLS.configuration(
            certificate: configuration.coordinator.certificate, privateKey: configuration.coordinator.privateKey,
            ca: configuration.coordinator.caCertificate)
        let listen = configuration.dataListen ?? ("127.0.0.1", 0)
        return Application(
            router: router,
            server: Listener.http1(
                tls: tls, limits: configuration.dataLimits, counter: ConnectionCounter(), refusals: refusals),
            configuration: ApplicationConfiguration(
                address: .hostname(listen.host, port: listen.port), serverName: "scm-backup-data"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? listen.port) }, logger: logger)
    }

    /// Runs `body` under a ``StallWatch``: once `progress` (bytes moved) has not grown for
    /// `seconds`, the peer (a sender that sends nothing, a reader that reads nothing) is cut by
    /// closing `channel`, the body is cancelled and `stalled` thrown, so its transfer slot is
    /// given back and a partial stays for the resumption.
    static func cuttingStalls(
        _ channel: any Channel, after seconds: Double, logger: Logger, ticket: TransferTicket, what: String,
        progress: @escaping @Sendable () -> Int64, _ body: () async throws -> Void
    ) async throws {
        do {
            try await StallWatch(limit: seconds).watching(
                progress: progress,
                onStall: {
                    logger.warning(
                        "transfer stalled; cut",
                        metadata: ["scm.path": "\(ticket.path)", "scm.ticket": "\(ticket.id)", "scm.peer": "\(what)"])
                    channel.close(promise: nil)
                }, body)
        } catch let stalled as StallWatch.Stalled {
            // The connection is closed already; the partial stays for the resumption.
            throw BackupError(.stalled, "\(stalled) (the \(what) of ticket \(ticket.id))")
        }
    }

    /// The first byte of a `Content-Range: bytes START-END/SIZE`; 0 without one.
    static func rangeStart(_ header: String?, size: Int64) throws -> Int64 {
        guard let header else { return 0 }
        let parts = header.dropFirst("bytes ".count).split(whereSeparator: { $0 == "-" || $0 == "/" })
        guard header.hasPrefix("bytes "), parts.count == 3, let start = Int64(parts[0]), let end = Int64(parts[1]),
            let total = Int64(parts[2]), total == size, end == size - 1, start >= 0, start <= end
        else {
            throw WireError(
                .badRequest, .badRange, "Content-Range '\(header)' is not bytes START-\(size - 1)/\(size).")
        }
        return start
    }

    /// A store error as the sender sees it.
    static func wire(_ error: BackupError) -> WireError {
        switch error.code {
        case .diskFull: WireError(.init(code: 507, reasonPhrase: "Insufficient Storage"), "disk-full", error.message)
        case .archiveCorrupt: WireError(.unprocessableContent, .mutantTransfer, error.message)
        case .archiveTruncated: WireError(.badRequest, .bodyShort, error.message)
        case .refused: WireError(.conflict, .refused, error.message)
        case .invalidArgument: WireError(.contentTooLarge, .bodyTooLong, error.message)
        default: WireError(.internalServerError, error.code, error.message)
        }
    }
}
