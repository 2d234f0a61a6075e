import AsyncHTTPClient
import BackupClient
import BackupCore
import BackupProtocol
import BackupTesting
import Crypto
import Foundation
import Logging
import NIOCore
import NIOSSL
import Testing

@testable import BackupAgent

/// A real data port (mutual TLS on 127.0.0.1, port 0) of node `backup1`, its store in a
/// temporary folder, and clients with certificates of the same site CA.
@Suite(.timeLimit(.minutes(3)))
struct DataPortTests {
    final class Site: Sendable {
        let dir: TemporaryDirectory
        let ca: SiteCA
        let key: Curve25519.Signing.PrivateKey
        let artifact: PublishedArtifact
        let bytes: [UInt8]
        let reports = LockedReports()

        init(_ dir: TemporaryDirectory, store: String? = nil) throws {
            self.dir = dir
            ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            for name in ["backup1", "cms02", "intruder"] {
                _ = try ca.issue(name: name, role: .agent, output: dir.file("certs"))
            }
            key = try Ed25519PEM.readPrivateKey(dir.file("ca/ticket-signing.key"))
            // An incompressible 3 MiB artifact on the origin.
            try FileManager.default.createDirectory(atPath: dir.file("src"), withIntermediateDirectories: true)
            var noise = SystemRandomNumberGenerator()
            try Data(noise.bytes(3 << 20)).write(
                to: URL(fileURLWithPath: dir.file("src/blob")))
            let origin = try Store.openForWriting(dir.file("origin"))
            artifact = try origin.backupFolder(dir.file("src"), node: "cms02", name: "data")
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: artifact.path)))
            _ = try Store.openForWriting(store ?? dir.file("backup1"))
        }

        /// Makes the site off Swift's cooperative pool: the CA, the keys, the bytes and the
        /// archive take seconds of CPU in a debug build, and the servers of every suite
        /// running beside this one answer on that pool.
        static func make(_ dir: TemporaryDirectory, store: String? = nil) async throws -> Site {
            try await blocking { try Site(dir, store: store) }
        }

        func configuration(store: String? = nil) -> AgentConfiguration {
            var config = AgentConfiguration(
                coordinator: CoordinatorEndpoint(
                    url: "https://127.0.0.1:1", certificate: dir.file("certs/backup1.pem"),
                    privateKey: dir.file("certs/backup1.key"), caCertificate: dir.file("ca/ca.pem")),
                storePath: store ?? dir.file("backup1"),
                // A folder without a marker gets an id no marker has: the agent refuses it, as it must.
                storeID: (try? Store(root: store ?? dir.file("backup1")).readMarker())??.id ?? "no-marker",
                node: "backup1")
            config.dataListen = ("127.0.0.1", 0)
            config.ticketKeyFiles = [dir.file("ca/ticket-signing.pub")]
            config.stallSeconds = 3
            return config
        }

        func ticket(
            sender: String = "cms02", receiver: String = "backup1", path: String? = nil, expiresIn: TimeInterval = 600,
            key: Curve25519.Signing.PrivateKey? = nil, token: UInt64 = 1, receipt: String? = nil,
            purpose: TransferTicket.Purpose = .transfer
        ) throws -> String {
            var ticket = TransferTicket(
                epoch: "00112233445566778899aabbccddeeff", taskId: 1, fencingToken: token, purpose: purpose,
                path: path ?? artifact.location.relativePath, sha256: artifact.dna.sha256, md5: nil,
                size: artifact.dna.size, sender: sender, receiver: receiver,
                expiresAt: Date().addingTimeInterval(expiresIn),
                facts: .init(
                    origin: "cms02", kind: "folder", source: "data", revision: artifact.dna.revision,
                    created: artifact.dna.created))
            ticket.receipt = receipt
            return try ticket.signed(with: key ?? self.key)
        }

        /// The hub's receipt of the artifact (or of what `size` says), signed with `key`.
        func receipt(size: Int64? = nil, key: Curve25519.Signing.PrivateKey? = nil) throws -> String {
            try ArtifactReceipt(
                epoch: "00112233445566778899aabbccddeeff", path: artifact.location.relativePath,
                size: size ?? artifact.dna.size, sha256: artifact.dna.sha256, md5: nil,
                facts: .init(
                    origin: "cms02", kind: "folder", source: "data", revision: artifact.dna.revision,
                    created: artifact.dna.created), signedAt: Date()
            ).signed(with: key ?? self.key)
        }

        var dnaHeader: String { Data(try! artifact.dna.encoded()).base64EncodedString() }

        /// Runs `body` while the data port serves; `revoked` are serials the coordinator said are revoked.
        func serving(store: String? = nil, revoked: Set<String> = [], _ body: (Int) async throws -> Void) async throws {
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let reports = reports
            let state = DataPortState()
            state.revoked.withLock { $0 = revoked }
            let app = try DataServer.makeApplication(
                configuration(store: store), ticketKeys: SigningKeyring(key.publicKey), state: state,
                report: { reports.add($0) }, logger: Logger(label: "test"), onRunning: { continuation.yield($0) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.run() }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw CancellationError() }
                do { try await body(port) } catch {
                    group.cancelAll()
                    throw error
                }
                group.cancelAll()
            }
        }

        func client<T>(as name: String, _ body: (HTTPClient) async throws -> T) async throws -> T {
            try await TestClient.with(
                cert: dir.file("certs/\(name).pem"), key: dir.file("certs/\(name).key"), ca: dir.file("ca/ca.pem"), body
            )
        }
    }

    final class LockedReports: @unchecked Sendable {
        // Safe: every access holds `lock`.
        private let lock = NSLock()
        private var items: [ArtifactReport] = []
        func add(_ r: ArtifactReport) {
            lock.lock()
            items.append(r)
            lock.unlock()
        }
        var all: [ArtifactReport] {
            lock.lock()
            defer { lock.unlock() }
            return items
        }
    }

    /// Sends a request; returns status, headers and body text.
    static func send(
        _ client: HTTPClient, port: Int, _ method: String, path: String, headers: [(String, String)] = [],
        body: ArraySlice<UInt8>? = nil
    ) async throws -> (Int, [String: String], String) {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/data/\(path)")
        request.method = .init(rawValue: method)
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: TestClient.requestTimeout)
        let text = try await response.body.collect(upTo: 16 << 20)
        let fields = Dictionary(
            response.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        return (Int(response.status.code), fields, String(buffer: text))
    }

    /// A client dials a peer by its identity name, so TLS itself checks the certificate's role
    /// and name: the data port of `backup1` is accepted as `backup1`, not as another agent and
    /// not as the coordinator (a fake hub presenting an agent's certificate is refused).
    @Test func aClientAcceptsOnlyTheCertificateOfThePeerItDials() async throws {
        try await withTemporaryDirectory("dataport-pinned") { dir in
            let site = try await Site.make(dir)
            try await site.serving { port in
                let me = CoordinatorEndpoint(
                    url: "https://127.0.0.1:\(port)", certificate: dir.file("certs/cms02.pem"),
                    privateKey: dir.file("certs/cms02.key"), caCertificate: dir.file("ca/ca.pem"))
                func status(as name: String, _ role: NodeRole) async throws -> Int {
                    let peer = try PinnedPeer(url: "https://127.0.0.1:\(port)", name: name, role: role)
                    return try await CoordinatorClient.withHTTPClient(me, pinnedTo: peer) { http in
                        var request = HTTPClientRequest(url: peer.dialURL + "/v1/data/x")
                        request.method = .HEAD
                        return Int(try await http.execute(request, timeout: TestClient.requestTimeout).status.code)
                    }
                }
                let admitted = try await status(as: "backup1", .agent)
                #expect(admitted == 401)  // Through TLS; refused only for want of a ticket.
                for (name, role) in [("intruder", NodeRole.agent), ("backup1", .coordinator), ("hub", .coordinator)] {
                    do {
                        _ = try await status(as: name, role)
                        Issue.record("a \(role.rawValue) '\(name)' was accepted on backup1's certificate")
                    } catch {
                        #expect(
                            CoordinatorClient.describe(error, expected: name).contains("is not that of"), "\(error)")
                    }
                }
                // The agent's coordinator client says which identity it wanted.
                await #expect {
                    try await CoordinatorClient.with(me) { client in _ = try await client.nodes() }
                } throws: { error in
                    "\(error)".contains("not that of coordinator 'hub' (role coordinator)")
                }
            }
        }
    }

    @Test func aPushIsReceivedVerifiedPublishedAndReportedAndItsTicketIsThenSpent() async throws {
        try await withTemporaryDirectory("data-push") { dir in
            let site = try await Site.make(dir)
            let path = site.artifact.location.relativePath
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    let ticket = try site.ticket()
                    let head = try await Self.send(
                        http, port: port, "HEAD", path: path, headers: [("SCM-Ticket", ticket)])
                    #expect(head.0 == 200)
                    #expect(head.1["scm-received"] == "0")
                    // The sender claims another origin and revision: the receiver does not listen.
                    var claimed = site.artifact.dna
                    claimed.origin = "evil"
                    claimed.revision = "666"
                    claimed.regressions = nil
                    let put = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [
                            ("SCM-Ticket", ticket), ("SCM-DNA", Data(try claimed.encoded()).base64EncodedString()),
                        ],
                        body: site.bytes[...])
                    #expect(put.0 == 200, "\(put.2)")
                    let result = try WireJSON.decoder().decode(ReceiveResult.self, from: Data(put.2.utf8))
                    #expect(result.sha256 == site.artifact.dna.sha256 && !result.skipped && result.resumedFrom == 0)
                    let received = dir.file("backup1/" + path)
                    #expect(Array(try Data(contentsOf: URL(fileURLWithPath: received))) == site.bytes)
                    // Its sidecar is the catalog's facts in the ticket and the digests computed here.
                    let sidecar = try DNA.decode(try FileSystem.readSmallFile(received + ".dna"), path: received)
                    let verified = try TransferTicket.verify(ticket, keys: SigningKeyring(site.key.publicKey))
                    #expect(sidecar == verified.sidecar())
                    #expect(sidecar.origin == "cms02" && sidecar.revision == site.artifact.dna.revision)
                    #expect(sidecar.sha256 == site.artifact.dna.sha256 && sidecar.size == site.artifact.dna.size)
                    #expect(site.reports.all.first?.copies.first?.state == .intact)
                    #expect(site.reports.all.first?.copies.first?.sha256 == site.artifact.dna.sha256)
                    let again = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [("SCM-Ticket", ticket), ("SCM-DNA", site.dnaHeader)], body: site.bytes[...])
                    #expect(again.0 == 409 && again.2.contains("ticket-used"), "a replayed ticket is refused")
                    // A new ticket for an artifact already held: no bytes needed.
                    let held = try await Self.send(
                        http, port: port, "HEAD", path: path, headers: [("SCM-Ticket", try site.ticket())])
                    #expect(held.1["scm-have"] == site.artifact.dna.sha256)
                }
            }
        }
    }

    /// A ticket's receipt is written beside the copy it names; one that names other bytes, or
    /// that a key the node does not trust signed, voids the ticket before any byte is taken.
    @Test func aTicketsReceiptIsKeptOnlyWhenItVerifiesAndNamesTheArtifact() async throws {
        try await withTemporaryDirectory("data-receipt") { dir in
            let site = try await Site.make(dir)
            let path = site.artifact.location.relativePath
            let received = dir.file("backup1/" + path)
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    for (receipt, what) in [
                        (try site.receipt(size: 7), "it says 7 bytes"),
                        (try site.receipt(key: Curve25519.Signing.PrivateKey()), "not among the keys trusted here"),
                        ("not a receipt", "is not <key id>.<payload>.<signature>"),
                    ] {
                        let put = try await Self.send(
                            http, port: port, "PUT", path: path,
                            headers: [("SCM-Ticket", try site.ticket(receipt: receipt))], body: site.bytes[...])
                        #expect(put.0 == 403 && put.2.contains("ticket-malformed"), "\(put.2)")
                        #expect(put.2.contains(what), "\(put.2)")
                        #expect(!FileManager.default.fileExists(atPath: received + ".partial"))
                        #expect(!FileManager.default.fileExists(atPath: received))
                    }
                    let good = try site.receipt()
                    let put = try await Self.send(
                        http, port: port, "PUT", path: path, headers: [("SCM-Ticket", try site.ticket(receipt: good))],
                        body: site.bytes[...])
                    #expect(put.0 == 200, "\(put.2)")
                    #expect(try Store.receipt(beside: received) == good)
                    let kept = try ArtifactReceipt.verify(good, keys: SigningKeyring(site.key.publicKey))
                    #expect(kept.path == path && kept.size == site.artifact.dna.size)
                    // A later ticket's receipt never replaces the one kept.
                    let later = try site.receipt()
                    let skipped = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [("SCM-Ticket", try site.ticket(token: 2, receipt: later))], body: site.bytes[...])
                    #expect(skipped.0 == 200 && skipped.2.contains("\"skipped\":true"), "\(skipped.2)")
                    #expect(try Store.receipt(beside: received) == good)
                }
            }
        }
    }

    /// A hub being restored reads its self-backup from a backup node: only with a restore
    /// ticket, only with its coordinator certificate, and only reading (an artifact or the
    /// index of one source); no agent uses a restore ticket, no hub a transfer ticket.
    @Test func onlyAHubWithARestoreTicketReadsAndOnlyReads() async throws {
        try await withTemporaryDirectory("data-restore") { dir in
            let site = try await Site.make(dir)
            _ = try site.ca.issue(name: "hub", role: .coordinator, output: dir.file("certs"))
            let path = site.artifact.location.relativePath
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    let put = try await Self.send(
                        http, port: port, "PUT", path: path, headers: [("SCM-Ticket", try site.ticket())],
                        body: site.bytes[...])
                    #expect(put.0 == 200, "\(put.2)")
                    let misuse = try await Self.send(
                        http, port: port, "GET", path: path,
                        headers: [
                            ("SCM-Ticket", try site.ticket(sender: "backup1", receiver: "cms02", purpose: .restore))
                        ])
                    #expect(misuse.0 == 403 && misuse.2.contains("wrong-role"), "\(misuse.2)")
                }
                try await site.client(as: "hub") { http in
                    let restore = try site.ticket(sender: "backup1", receiver: "hub", purpose: .restore)
                    var get = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/data/\(path)")
                    get.headers.add(name: "SCM-Ticket", value: restore)
                    let got = try await http.execute(get, timeout: TestClient.requestTimeout)
                    let bytes = try await got.body.collect(upTo: 16 << 20)
                    #expect(got.status.code == 200 && Array(buffer: bytes) == site.bytes, "the hub reads the artifact")
                    let transfer = try site.ticket(sender: "backup1", receiver: "hub")
                    let asTransfer = try await Self.send(
                        http, port: port, "GET", path: path, headers: [("SCM-Ticket", transfer)])
                    #expect(asTransfer.0 == 403 && asTransfer.2.contains("wrong-role"), "\(asTransfer.2)")
                    let write = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [
                            ("SCM-Ticket", try site.ticket(sender: "hub", receiver: "backup1", purpose: .restore))
                        ],
                        body: site.bytes[...])
                    #expect(write.0 == 403 && write.2.contains("wrong-role"), "a hub never writes: \(write.2)")
                    // The index of the source, by a ticket for exactly that source.
                    let folder = "cms02/folder/data"
                    var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/index/\(folder)")
                    request.headers.add(
                        name: "SCM-Ticket",
                        value: try site.ticket(sender: "backup1", receiver: "hub", path: folder, purpose: .restore))
                    let response = try await http.execute(request, timeout: TestClient.requestTimeout)
                    let body = try await response.body.collect(upTo: 1 << 20)
                    #expect(response.status.code == 200, "\(String(buffer: body))")
                    let index = try WireJSON.decoder().decode(ArtifactReport.self, from: Data(buffer: body))
                    #expect(index.copies.map(\.path) == [path])
                    #expect(index.copies.first?.sha256 == site.artifact.dna.sha256)
                    var other = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/index/cms02/folder/other")
                    other.headers.add(
                        name: "SCM-Ticket",
                        value: try site.ticket(sender: "backup1", receiver: "hub", path: folder, purpose: .restore))
                    let refused = try await http.execute(other, timeout: TestClient.requestTimeout)
                    #expect(refused.status.code == 403)
                    // A part that is no name is named.
                    let bad = "cms02/folder/.hidden"
                    var hidden = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/index/\(bad)")
                    hidden.headers.add(
                        name: "SCM-Ticket",
                        value: try site.ticket(sender: "backup1", receiver: "hub", path: bad, purpose: .restore))
                    let answer = try await http.execute(hidden, timeout: TestClient.requestTimeout)
                    let text = String(buffer: try await answer.body.collect(upTo: 1 << 20))
                    #expect(
                        answer.status.code == 400 && text.contains("bad-path") && text.contains("source"), "\(text)")
                }
            }
        }
    }

    /// A node being recovered reads one artifact from the node holding the copy with a
    /// recover ticket: only the agent the ticket names, only a GET; the ticket never writes.
    @Test func aRecoverTicketOnlyReadsAndOnlyForTheNodeItNames() async throws {
        try await withTemporaryDirectory("data-recover") { dir in
            let site = try await Site.make(dir)
            _ = try site.ca.issue(name: "hub", role: .coordinator, output: dir.file("certs"))
            let path = site.artifact.location.relativePath
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    let put = try await Self.send(
                        http, port: port, "PUT", path: path, headers: [("SCM-Ticket", try site.ticket())],
                        body: site.bytes[...])
                    #expect(put.0 == 200, "\(put.2)")
                    let recover = try site.ticket(sender: "backup1", receiver: "cms02", purpose: .recover)
                    var get = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/data/\(path)")
                    get.headers.add(name: "SCM-Ticket", value: recover)
                    let got = try await http.execute(get, timeout: TestClient.requestTimeout)
                    let bytes = try await got.body.collect(upTo: 16 << 20)
                    #expect(got.status.code == 200 && Array(buffer: bytes) == site.bytes, "the target reads the copy")
                    let write = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [
                            ("SCM-Ticket", try site.ticket(sender: "cms02", receiver: "backup1", purpose: .recover))
                        ],
                        body: site.bytes[...])
                    #expect(
                        write.0 == 403 && write.2.contains("wrong-role"), "a recover ticket never writes: \(write.2)")
                    let other = try await Self.send(
                        http, port: port, "GET", path: path,
                        headers: [
                            ("SCM-Ticket", try site.ticket(sender: "backup1", receiver: "cms03", purpose: .recover))
                        ])
                    #expect(other.0 == 403 && other.2.contains("ticket-wrong-peer"), "\(other.2)")
                }
                try await site.client(as: "hub") { http in
                    let asHub = try await Self.send(
                        http, port: port, "GET", path: path,
                        headers: [
                            ("SCM-Ticket", try site.ticket(sender: "backup1", receiver: "hub", purpose: .recover))
                        ])
                    #expect(asHub.0 == 403 && asHub.2.contains("wrong-role"), "\(asHub.2)")
                }
            }
        }
    }

    @Test func aShortBodyKeepsItsPartialAndTheRestResumesToIdenticalBytes() async throws {
        try await withTemporaryDirectory("data-resume") { dir in
            let site = try await Site.make(dir)
            let path = site.artifact.location.relativePath
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    let ticket = try site.ticket()
                    let headers = [("SCM-Ticket", ticket), ("SCM-DNA", site.dnaHeader)]
                    // The sender dies after 1 MB: the body ends early.
                    let short = try await Self.send(
                        http, port: port, "PUT", path: path, headers: headers, body: site.bytes[0..<1_000_000])
                    #expect(short.0 == 400 && short.2.contains("body-short"), "\(short.2)")
                    #expect(!FileManager.default.fileExists(atPath: dir.file("backup1/" + path)))
                    let head = try await Self.send(
                        http, port: port, "HEAD", path: path, headers: [("SCM-Ticket", ticket)])
                    #expect(head.1["scm-received"] == "1000000")
                    // A start that is not what the receiver holds is refused.
                    let wrong = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: headers + [("Content-Range", "bytes 5-\(site.bytes.count - 1)/\(site.bytes.count)")],
                        body: site.bytes[5...])
                    #expect(wrong.0 == 416, "\(wrong.2)")
                    let rest = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: headers + [
                            ("Content-Range", "bytes 1000000-\(site.bytes.count - 1)/\(site.bytes.count)")
                        ], body: site.bytes[1_000_000...])
                    #expect(rest.0 == 200, "\(rest.2)")
                    let result = try WireJSON.decoder().decode(ReceiveResult.self, from: Data(rest.2.utf8))
                    #expect(result.resumedFrom == 1_000_000)
                    #expect(
                        Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("backup1/" + path)))) == site.bytes)
                }
            }
        }
    }

    @Test func badTicketsWrongPeersBadPathsAndWrongLengthsAreRefused() async throws {
        try await withTemporaryDirectory("data-refusals") { dir in
            let site = try await Site.make(dir)
            let path = site.artifact.location.relativePath
            func put(
                _ http: HTTPClient, _ port: Int, ticket: String, path: String = path, body: ArraySlice<UInt8>? = nil
            )
                async throws -> (Int, String)
            {
                let r = try await Self.send(
                    http, port: port, "PUT", path: path,
                    headers: [("SCM-Ticket", ticket), ("SCM-DNA", site.dnaHeader)],
                    body: body ?? site.bytes[...])
                return (r.0, r.2)
            }
            try await site.serving { port in
                try await site.client(as: "cms02") { http in
                    let forged = try await put(
                        http, port, ticket: try site.ticket(key: Curve25519.Signing.PrivateKey()))
                    #expect(forged.0 == 403 && forged.1.contains("ticket-forged"), "\(forged)")
                    let expired = try await put(http, port, ticket: try site.ticket(expiresIn: -3600))
                    #expect(expired.0 == 403 && expired.1.contains("ticket-expired"), "\(expired)")
                    let misaddressed = try await put(http, port, ticket: try site.ticket(receiver: "backup2"))
                    #expect(misaddressed.0 == 403 && misaddressed.1.contains("ticket-misaddressed"), "\(misaddressed)")
                    let other = try await put(
                        http, port, ticket: try site.ticket(), path: "cms02/folder/data/2026/01/01/000000/data-x.tar.gz"
                    )
                    #expect(other.0 == 403 && other.1.contains("ticket-other-artifact"), "\(other)")
                    let dotdot = "cms02/folder/data/2026/01/01/000000/../../../../../../../x.tar.gz"
                    let escape = try await put(http, port, ticket: try site.ticket(path: dotdot), path: dotdot)
                    #expect(escape.0 == 400 && escape.1.contains("bad-path"), "\(escape)")
                    let none = try await Self.send(http, port: port, "PUT", path: path, body: site.bytes[...])
                    #expect(none.0 == 401 && none.2.contains("no-ticket"), "\(none)")
                    let longer = try await put(
                        http, port, ticket: try site.ticket(), body: (site.bytes + [1, 2, 3])[...])
                    #expect(longer.0 == 413 && longer.1.contains("body-too-long"), "\(longer)")
                    #expect(!FileManager.default.fileExists(atPath: dir.file("backup1/" + path)))
                    // A damaged body: the digest differs, nothing is published.
                    var damaged = site.bytes
                    damaged[12345] ^= 0xFF
                    let mutant = try await put(http, port, ticket: try site.ticket(), body: damaged[...])
                    #expect(mutant.0 == 422 && mutant.1.contains("mutant-transfer"), "\(mutant)")
                    #expect(!FileManager.default.fileExists(atPath: dir.file("backup1/" + path)))
                }
                // A valid ticket for cms02, presented by another node of the site.
                try await site.client(as: "intruder") { http in
                    let stolen = try await put(http, port, ticket: try site.ticket())
                    #expect(stolen.0 == 403 && stolen.1.contains("ticket-wrong-peer"), "\(stolen)")
                }
            }
            #expect(try Store(root: dir.file("backup1")).scan().artifacts.isEmpty, "nothing published by refusals")
        }
    }

    @Test func aRevokedSendersCertificateIsRefusedByTheDataPort() async throws {
        try await withTemporaryDirectory("data-revoked") { dir in
            let site = try await Site.make(dir)
            let serial = try #require(try site.ca.issuedCertificates().first { $0.name == "cms02" }).serial
            try await site.serving(revoked: [serial]) { port in
                try await site.client(as: "cms02") { http in
                    let r = try await Self.send(
                        http, port: port, "PUT", path: site.artifact.location.relativePath,
                        headers: [("SCM-Ticket", try site.ticket()), ("SCM-DNA", site.dnaHeader)], body: site.bytes[...]
                    )
                    #expect(r.0 == 403 && r.2.contains("certificate-revoked") && r.2.contains(serial), "\(r.2)")
                }
            }
        }
    }

    @Test func aPullServesTheBytesFromARangeWithTheDNA() async throws {
        try await withTemporaryDirectory("data-pull") { dir in
            let site = try await Site.make(dir)
            let path = site.artifact.location.relativePath
            // Serve from the origin's store: node backup1's data port holding the artifact.
            try await site.serving(store: dir.file("origin")) { port in
                try await site.client(as: "cms02") { http in
                    // backup1 is the sender here, cms02 the receiver.
                    let ticket = try site.ticket(sender: "backup1", receiver: "cms02")
                    let all = try await Self.send(
                        http, port: port, "GET", path: path, headers: [("SCM-Ticket", ticket)])
                    #expect(all.0 == 200)
                    #expect(all.1["scm-dna"] != nil)
                    let tail = try await Self.send(
                        http, port: port, "GET", path: path,
                        headers: [("SCM-Ticket", ticket), ("Range", "bytes=3000000-")])
                    #expect(tail.0 == 206)
                    #expect(tail.1["content-range"] == "bytes 3000000-\(site.bytes.count - 1)/\(site.bytes.count)")
                    let asReceiver = try await Self.send(
                        http, port: port, "GET", path: path, headers: [("SCM-Ticket", try site.ticket())])
                    #expect(asReceiver.0 == 403 && asReceiver.2.contains("ticket-misaddressed"))
                }
            }
        }
    }

    @Test func aFullDiskOnTheReceiverFailsCleanlyAndHarmsNothingElse() async throws {
        try await withTemporaryDirectory("data-full") { dir in
            let mountPoint = dir.file("small")
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let mount = try Command.run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint])
            try #require(mount.status == 0, "the test needs to mount a 2 MiB tmpfs (run as root): \(mount.stderr)")
            // Unmount even when an expectation failed; a mount left over would die with the machine.
            defer { _ = try? Command.run("umount", [mountPoint]) }
            let site = try await Site.make(dir, store: mountPoint)
            // Something already there that must survive.
            try "keep me\n".write(toFile: mountPoint + "/other.txt", atomically: true, encoding: .utf8)
            let path = site.artifact.location.relativePath
            try await site.serving(store: mountPoint) { port in
                try await site.client(as: "cms02") { http in
                    let r = try await Self.send(
                        http, port: port, "PUT", path: path,
                        headers: [("SCM-Ticket", try site.ticket()), ("SCM-DNA", site.dnaHeader)], body: site.bytes[...]
                    )
                    #expect(r.0 == 507 && r.2.contains("disk-full"), "\(r.2)")
                    #expect(r.2.contains("No space left on the receiving store"))
                }
            }
            #expect(!FileManager.default.fileExists(atPath: mountPoint + "/" + path))
            #expect(!FileManager.default.fileExists(atPath: mountPoint + "/" + path + ".dna"))
            #expect(try String(contentsOfFile: mountPoint + "/other.txt", encoding: .utf8) == "keep me\n")
        }
    }
}
