import AsyncHTTPClient
import NIOCore
import NIOSSL

/// The HTTPS client of in-process tests: it presents a certificate of the test's site CA (or
/// none), trusts that CA, and is shut down after `body`. It dials the server the test started
/// by address, so it checks the chain but not the identity name (the pinning of real clients
/// has tests of its own).
public enum TestClient {
    /// How long a test request may wait for its answer. Generous: every suite runs in
    /// parallel on a 2-core CI machine, where an in-process server's answer can wait seconds
    /// for a thread; a server that really hangs is caught by the suite's time limit.
    public static let requestTimeout: TimeAmount = .seconds(60)

    public static func with<T>(
        cert: String?, key: String?, ca: String, httpVersion: HTTPClient.Configuration.HTTPVersion = .automatic,
        timeout: HTTPClient.Configuration.Timeout? = nil, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        tls.certificateVerification = .noHostnameVerification
        if let cert, let key {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.httpVersion = httpVersion
        if let timeout { configuration.timeout = timeout }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try await client.shutdown()
            throw error
        }
    }
}
