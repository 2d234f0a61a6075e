import AsyncHTTPClient
import BackupCoordinator
import BackupProtocol
import BackupTesting
import Foundation
import NIOCore
import NIOSSL

/// A real coordinator on 127.0.0.1, port 0, with a site CA and certificates made for the test.
struct CoordinatorHarness {
    let dir: TemporaryDirectory
    let ca: SiteCA
    var port = 0

    init(_ dir: TemporaryDirectory) throws {
        self.dir = dir
        ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
        _ = try ca.issue(name: "hub", role: .coordinator, output: dir.file("certs"))
    }

    /// The site of these tests: server nodes srv1...srv9 and `intruder`, each with an svn
    /// source `env`, and a backup node `vault`.
    static let site = SiteConfiguration(
        nodes: (1...9).map { "srv\($0)" }.map { name in
            SiteConfiguration.Node(
                name: name, roles: [.server], addresses: ["127.0.0.1"],
                sources: ["env": SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env")])
        } + [
            .init(name: "intruder", roles: [.server]), .init(name: "vault", roles: [.backup]),
        ], pairings: [.init(server: "srv1", backup: "vault")])

    var configuration: CoordinatorConfiguration {
        var config = CoordinatorConfiguration(
            certificate: dir.file("certs/hub.pem"), privateKey: dir.file("certs/hub.key"),
            caCertificate: dir.file("ca/ca.pem"), revocationList: dir.file("ca/revoked.json"),
            database: dir.file("catalog.sqlite"), site: Self.site)
        config.purgeKey = dir.file("ca/purge-signing.key")
        return config
    }

    /// Issues a certificate and returns its name.
    @discardableResult
    func issue(_ name: String, _ role: NodeRole, now: Date = Date(), days: Int = 30) throws -> IssuedCertificate {
        try ca.issue(name: name, role: role, days: days, output: dir.file("certs"), now: now)
    }

    /// Runs `body` while the coordinator serves.
    func serving(
        configure: (inout CoordinatorConfiguration) -> Void = { _ in }, _ body: (Int) async throws -> Void
    ) async throws {
        var config = configuration
        config.port = 0
        configure(&config)
        let catalog = try Catalog(path: config.database)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try CoordinatorServer.makeApplication(config, catalog: catalog) { continuation.yield($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            do {
                try await body(port)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    /// An HTTPS client presenting `name`'s certificate (or none), trusting the site CA.
    func withClient<T>(
        as name: String?, httpVersion: HTTPClient.Configuration.HTTPVersion = .automatic,
        _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        try await TestClient.with(
            cert: name.map { dir.file("certs/\($0).pem") }, key: name.map { dir.file("certs/\($0).key") },
            ca: dir.file("ca/ca.pem"), httpVersion: httpVersion, body)
    }

    enum Method { case get, post }

    /// Sends a JSON request and decodes a JSON answer of a 2xx status.
    static func call<T: Decodable>(
        _ client: HTTPClient, _ method: Method, port: Int, _ path: String, _ value: some Encodable, as type: T.Type
    ) async throws -> T {
        let (status, text) = try await send(
            client, method, port: port, path, body: try WireJSON.encoder().encode(value))
        guard (200..<300).contains(status) else { throw HarnessError(message: "\(path) answered \(status): \(text)") }
        return try WireJSON.decoder().decode(T.self, from: Data(text.utf8))
    }

    struct HarnessError: Error {
        var message: String
    }

    /// Sends a request; returns the status and the body as text.
    static func send(
        _ client: HTTPClient, _ method: Method, port: Int, _ path: String, body: Data? = nil
    ) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)")
        request.method = method == .post ? .POST : .GET
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: TestClient.requestTimeout)
        let text = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: text))
    }
}
