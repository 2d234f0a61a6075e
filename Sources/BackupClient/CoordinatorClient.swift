import AsyncHTTPClient
import BackupCore
import BackupProtocol
import Foundation
import NIOCore
import NIOSSL

/// A client of the coordinator's `/v1` API over mutual TLS, shared by agents, the operator
/// CLI and the lease benchmark (the `BackupClient` target: the CLI does not link the agent). Errors name the coordinator and carry the server's error code and message.
public struct CoordinatorClient: Sendable {
    public let endpoint: CoordinatorEndpoint
    /// The HTTPS client with this node's identity, pinned to the coordinator's.
    let client: HTTPClient
    /// The coordinator, as dialled.
    let peer: PinnedPeer

    /// Runs `body` with a client, shutting it down afterwards. The client accepts only a
    /// server certificate of role `coordinator` named `endpoint.coordinatorName`.
    public static func with<T: Sendable>(
        _ endpoint: CoordinatorEndpoint, _ body: (CoordinatorClient) async throws -> T
    ) async throws -> T {
        let peer = try PinnedPeer(url: endpoint.url, name: endpoint.coordinatorName, role: .coordinator)
        return try await withHTTPClient(endpoint, pinnedTo: peer) { http in
            try await body(CoordinatorClient(endpoint: endpoint, client: http, peer: peer))
        }
    }

    /// Runs `body` with an HTTPS client of this node's identity that accepts only `peer`.
    package static func withHTTPClient<T: Sendable>(
        _ endpoint: CoordinatorEndpoint, pinnedTo peer: PinnedPeer, _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        var configuration = HTTPClient.Configuration(tlsConfiguration: try tlsConfiguration(endpoint))
        configuration.dnsOverride = peer.override
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(http)
            try await http.shutdown()
            return result
        } catch {
            try await http.shutdown()
            throw error
        }
    }

    /// This node's client TLS: its certificate and key, the site CA as the only trust root,
    /// full verification of the server (chain and the identity name dialled).
    package static func tlsConfiguration(_ endpoint: CoordinatorEndpoint) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(
            try load("CA certificate", endpoint.caCertificate) { try NIOSSLCertificate.fromPEMFile($0) })
        tls.certificateChain = try load("certificate", endpoint.certificate) { try NIOSSLCertificate.fromPEMFile($0) }
            .map { .certificate($0) }
        tls.privateKey = .privateKey(
            try load("key", endpoint.privateKey) { try NIOSSLPrivateKey(file: $0, format: .pem) })
        tls.certificateVerification = .fullVerification
        return tls
    }

    private static func load<T>(_ what: String, _ path: String, _ read: (String) throws -> T) throws -> T {
        guard FileManager.default.fileExists(atPath: path) else {
            throw BackupError(.invalidArgument, "The \(what) file '\(path)' does not exist.")
        }
        do { return try read(path) } catch {
            throw BackupError(.invalidArgument, "The \(what) file '\(path)' cannot be read as PEM: \(error).")
        }
    }

    /// `GET /v1/nodes`.
    public func nodes() async throws -> [NodeStatus] {
        try await send("GET", "/v1/nodes", body: Optional<Int>.none, as: [NodeStatus].self)
    }

    /// `GET /v1/tasks`: a page of tasks, newest first, as `query` selects them.
    public func tasks(_ query: TaskListQuery = TaskListQuery()) async throws -> [TaskInfo] {
        let parameters = query.queryString
        return try await send(
            "GET", "/v1/tasks" + (parameters.isEmpty ? "" : "?" + parameters), body: Optional<Int>.none,
            as: [TaskInfo].self)
    }

    /// `GET /v1/artifacts`, optionally only those with a copy on `node` or of `source`; with
    /// `gone`, also those no copy is left of.
    public func artifacts(node: String? = nil, source: String? = nil, gone: Bool = false) async throws
        -> [ArtifactInfo]
    {
        var query: [String] = gone ? ["gone=true"] : []
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        if let node { query.append("node=" + (node.addingPercentEncoding(withAllowedCharacters: allowed) ?? node)) }
        if let source {
            query.append("source=" + (source.addingPercentEncoding(withAllowedCharacters: allowed) ?? source))
        }
        // Page after page (1,000 a page, in id order), then in the catalog's listing order.
        var all: [ArtifactInfo] = []
        var after: Int64 = 0
        while true {
            let path = "/v1/artifacts?" + (query + ["after=\(after)", "limit=1000"]).joined(separator: "&")
            let page = try await send("GET", path, body: Optional<Int>.none, as: [ArtifactInfo].self)
            all += page
            guard page.count == 1000, let last = page.last?.id, last > after else { break }
            after = last
        }
        return all.sorted {
            ($0.origin, $0.kind, $0.source, $0.stamp, $0.fileName) < (
                $1.origin, $1.kind, $1.source, $1.stamp, $1.fileName
            )
        }
    }

    /// `GET /v1/schedules`: each source's schedule, next fire time and last slot.
    public func schedules() async throws -> [ScheduleInfo] {
        try await send("GET", "/v1/schedules", body: Optional<Int>.none, as: [ScheduleInfo].self)
    }

    /// `POST /v1/runs`: starts a run of the sources `request` selects.
    public func startRun(_ request: StartRunRequest) async throws -> RunInfo {
        try await send("POST", "/v1/runs", body: request, as: RunInfo.self)
    }

    /// `GET /v1/runs`: a page of runs, newest first.
    public func runs(_ query: RunListQuery = RunListQuery()) async throws -> [RunInfo] {
        let parameters = query.queryString
        return try await send(
            "GET", "/v1/runs" + (parameters.isEmpty ? "" : "?" + parameters), body: Optional<Int>.none,
            as: [RunInfo].self)
    }

    /// `GET /v1/runs/{id}`.
    public func run(_ id: Int64) async throws -> RunInfo {
        try await send("GET", "/v1/runs/\(id)", body: Optional<Int>.none, as: RunInfo.self)
    }

    /// `GET /v1/status`: the site at a glance.
    public func status() async throws -> SiteStatus {
        try await send("GET", "/v1/status", body: Optional<Int>.none, as: SiteStatus.self)
    }

    /// `GET /v1/purge/plan?node=`: what the purge stage would delete on `node` now, and why the rest stays.
    public func purgePlan(node: String) async throws -> PurgePlan {
        let query = node.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? node
        return try await send("GET", "/v1/purge/plan?node=\(query)", body: Optional<Int>.none, as: PurgePlan.self)
    }

    /// `POST /v1/purge/apply`: the purge stage on `node` now (admin).
    public func applyPurge(node: String) async throws -> PurgePlan {
        try await send("POST", "/v1/purge/apply", body: PurgeApplyRequest(node: node), as: PurgePlan.self)
    }

    /// `POST /v1/purge/pause` or `/v1/purge/resume` (admin); answers the switches that are on.
    public func setPurgePause(_ on: Bool, _ request: PurgeSwitchRequest) async throws -> [PurgePause] {
        try await send("POST", on ? "/v1/purge/pause" : "/v1/purge/resume", body: request, as: [PurgePause].self)
    }

    /// `GET /v1/tasks/{id}`: one task.
    public func task(_ id: Int64) async throws -> TaskInfo {
        try await send("GET", "/v1/tasks/\(id)", body: Optional<Int>.none, as: TaskInfo.self)
    }

    /// `POST /v1/trash` (admin): a trash order for a node; answers its task.
    public func trash(_ request: TrashRequest) async throws -> TaskInfo {
        try await send("POST", "/v1/trash", body: request, as: TaskInfo.self)
    }

    /// `GET /v1/purge/pauses`: the pause switches that are on.
    public func purgePauses() async throws -> [PurgePause] {
        try await send("GET", "/v1/purge/pauses", body: Optional<Int>.none, as: [PurgePause].self)
    }

    /// `POST /v1/purge/release` (admin): accept a source's flagged newest backup as its baseline.
    public func releasePurge(_ request: PurgeReleaseRequest) async throws -> PurgeReleaseResponse {
        try await send("POST", "/v1/purge/release", body: request, as: PurgeReleaseResponse.self)
    }

    /// `GET /v1/check`: what each backup node lacks of its servers' artifacts.
    public func check() async throws -> [CheckEntry] {
        try await send("GET", "/v1/check", body: Optional<Int>.none, as: [CheckEntry].self)
    }

    /// `GET /v1/events`: accepted admin requests, newest first.
    public func events(limit: Int) async throws -> [EventInfo] {
        try await send("GET", "/v1/events?limit=\(limit)", body: Optional<Int>.none, as: [EventInfo].self)
    }

    /// `POST /v1/tasks`.
    public func submit(_ request: SubmitTaskRequest) async throws -> TaskInfo {
        try await send("POST", "/v1/tasks", body: request, as: TaskInfo.self)
    }

    /// `POST /v1/transfers`.
    public func transfer(_ request: TransferRequest) async throws -> TransferPlan {
        try await send("POST", "/v1/transfers", body: request, as: TransferPlan.self)
    }

    /// `POST /v1/recoveries` (admin): the recover task queued on the target node.
    public func recover(_ request: RecoverRequest) async throws -> TaskInfo {
        try await send("POST", "/v1/recoveries", body: request, as: TaskInfo.self)
    }

    /// `GET /v1/recoveries/{id}/preview` (admin): a folder recovery's sealed preview, once.
    public func recoveryPreview(_ id: Int64) async throws -> SealedPreview {
        try await send("GET", "/v1/recoveries/\(id)/preview", body: Optional<Int>.none, as: SealedPreview.self)
    }

    /// `GET /v1/alerts`: the alerts (with the resolved ones when `all`).
    public func alerts(all: Bool) async throws -> [AlertInfo] {
        try await send("GET", "/v1/alerts" + (all ? "?all=true" : ""), body: Optional<Int>.none, as: [AlertInfo].self)
    }

    /// `POST /v1/alerts/silence` (admin).
    public func silence(_ request: SilenceRequest) async throws -> SilenceInfo {
        try await send("POST", "/v1/alerts/silence", body: request, as: SilenceInfo.self)
    }

    /// `GET /v1/alerts/silences`: the silences in force.
    public func silences() async throws -> [SilenceInfo] {
        try await send("GET", "/v1/alerts/silences", body: Optional<Int>.none, as: [SilenceInfo].self)
    }

    /// `POST /v1/alerts/test` (admin): a test notice through every channel.
    public func testAlerts() async throws {
        _ = try await send("POST", "/v1/alerts/test", body: Optional<Int>.none, as: Empty.self, allowEmpty: true)
    }

    /// `POST /v1/agents/copies`: copies this node received through its data port.
    public func reportCopies(_ report: ArtifactReport) async throws {
        _ = try await send("POST", "/v1/agents/copies", body: report, as: Empty.self, allowEmpty: true)
    }

    /// An answer without a body (204).
    public struct Empty: Decodable {}

    /// `POST /v1/agents/register`.
    public func register(_ request: RegisterRequest) async throws -> RegisterResponse {
        try await send("POST", "/v1/agents/register", body: request, as: RegisterResponse.self)
    }

    /// Sends a request and decodes a 2xx answer; any other status is an error carrying the
    /// server's code and message.
    public func send<Body: Encodable, Answer: Decodable>(
        _ method: String, _ path: String, body: Body?, as type: Answer.Type, timeout: TimeAmount = .seconds(45),
        allowEmpty: Bool = false
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: peer.dialURL + path)
        request.method = method == "POST" ? .POST : .GET
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try WireJSON.encoder().encode(body)))
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw CoordinatorUnreachable(
                url: endpoint.url,
                reason: CoordinatorClient.describe(
                    error, expected: "coordinator '\(endpoint.coordinatorName)' (role coordinator)"))
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Self.refusal(
                status: Int(response.status.code), body: data, by: "The coordinator at \(endpoint.url)",
                of: "\(method) \(path)")
        }
        if allowEmpty && data.isEmpty, let empty = Empty() as? Answer { return empty }
        do { return try WireJSON.decoder().decode(Answer.self, from: data) } catch {
            throw BackupError(
                .io,
                "The coordinator at \(endpoint.url) sent an answer to \(path) that cannot be read: \(WireJSON.describe(error))."
            )
        }
    }

    /// A refusal from one of our servers as an error carrying its wire code and message
    /// ("<who> refused <what> (<status>): <message>").
    package static func refusal(
        status: Int, body: Data, by who: String, of what: String, errorHeader: String? = nil
    ) -> BackupError {
        // A body that is not our JSON error (a proxy's page, say) is shown as text; an answer
        // without a body (HEAD) may carry the error in its header.
        let decoder = WireJSON.decoder()
        let wire =
            (try? decoder.decode(ErrorResponse.self, from: body))
            ?? errorHeader.flatMap { Data(base64Encoded: $0) }.flatMap {
                try? decoder.decode(ErrorResponse.self, from: $0)
            }
        let text = String(decoding: body, as: UTF8.self)
        return BackupError(
            BackupError.Code(rawValue: wire?.error.code ?? "http-\(status)"),
            "\(who) refused \(what) (\(status)): \(wire?.error.message ?? (text.isEmpty ? "no reason given" : text))")
    }

    /// A transport error in words: a refused certificate says so (BoringSSL reports it at the
    /// first read with TLS 1.3, see STACK-NOTES).
    package static func describe(_ error: any Error, expected: String? = nil) -> String {
        let text = String(describing: error)
        if let expected, text.contains("ostname") {
            return "the server's certificate is not that of \(expected) in this site (\(text))"
        }
        if text.contains("CERTIFICATE") || text.contains("UNKNOWN_CA") || text.contains("certificate") {
            return "the certificate was not accepted (\(text))"
        }
        return text
    }
}

/// The coordinator could not be reached or refused the TLS connection (CLI exit code 10).
public struct CoordinatorUnreachable: Error, CustomStringConvertible {
    public var url: String
    public var reason: String
    public var description: String { "Cannot reach the coordinator at \(url): \(reason)." }
}
