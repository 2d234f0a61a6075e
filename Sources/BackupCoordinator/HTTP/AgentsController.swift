import BackupCore
import BackupHTTP
import BackupProtocol
import Hummingbird

/// `/v1/agents/...`: registration, heartbeats and copies a node received. Decode, call the
/// node registry, encode.
struct AgentsController {
    let coordinator: Coordinator

    func addRoutes(to router: Router<CoordinatorContext>) {
        let nodes = coordinator.nodes
        let heartbeat = coordinator.configuration.heartbeatSeconds
        let revocations = coordinator.revocations
        let catalog = coordinator.catalog
        let desk = coordinator.desk
        let wallClock = coordinator.wallClock
        let sites = coordinator.sites
        let fallbacks = coordinator.fallbacks
        router.post("/v1/agents/register") { request, context in
            let peer = try await context.siteAgent(nodes, for: "register as an agent", registering: true)
            let body = try await request.decodeJSON(RegisterRequest.self)
            let now = try await nodes.register(peer, body)
            try await catalog.noteCertificate(node: peer.name, notAfter: peer.notAfter)
            context.logger.info(
                "agent registered",
                metadata: ["scm.node": "\(peer.name)", "scm.version": "\(AuditText.escape(body.version, limit: 100))"])
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials,
                    maxTasks: sites.current.node(peer.name)?.maxTasks, catalogEpoch: try await catalog.epoch(),
                    fallback: try await fallbacks.plan(for: peer.name)))
        }
        router.post("/v1/agents/heartbeat") { request, context in
            // Registration is checked by the update itself, after the body.
            let peer = try await context.siteAgent(nodes, for: "send agent heartbeats", registering: true)
            let body = try await request.decodeJSON(HeartbeatRequest.self)
            let now = try await nodes.heartbeat(peer, body)
            return try JSONResponse.make(
                RegisterResponse(
                    heartbeatSeconds: heartbeat, serverTime: now, revokedSerials: try revocations.current().serials,
                    maxTasks: sites.current.node(peer.name)?.maxTasks, catalogEpoch: try await catalog.epoch(),
                    fallback: try await fallbacks.plan(for: peer.name)))
        }
        router.post("/v1/agents/fallback") { request, context in
            let peer = try await context.siteAgent(nodes, for: "report its own backups")
            let body = try await request.decodeJSON(FallbackReport.self, limit: CoordinatorServer.maxResultBytes)
            let answer: FallbackAnswer
            do {
                answer = try await fallbacks.accept(body, from: peer.name, now: wallClock.currentDate)
            } catch let error as BackupError where error.code == .unknownSource {
                throw WireError(.unprocessableContent, error.code, error.message)
            }
            return try JSONResponse.make(answer)
        }
        router.post("/v1/agents/copies") { request, context in
            let peer = try await context.siteAgent(nodes, for: "report copies")
            let body = try await request.decodeJSON(ArtifactReport.self, limit: CoordinatorServer.maxResultBytes)
            guard !body.complete, body.deleted == nil else {
                throw WireError(
                    .badRequest, .malformedJSON,
                    "A copies report names the copies a node received; listings and deletions come with task results.")
            }
            // Believed only for the artifacts a transfer brings to this node, and only with the
            // reference digest (``ReportAuthority/receipt(paths:)``).
            let expected = try await catalog.transfers(to: peer.name)
            let now = wallClock.currentDate
            try await catalog.record(body, node: peer.name, authority: .receipt(paths: expected), now: now)
            // A copy just received may be the source a waiting repair lacked.
            _ = try await desk.repairWaiting(body, node: peer.name, now: now)
            return Response(status: .noContent)
        }
    }
}

extension CoordinatorContext {
    /// The calling agent, when it is an agent of the site loaded now (and registered unless
    /// it is registering); every agent endpoint asks this first.
    func siteAgent(_ nodes: NodeRegistry, for action: String, registering: Bool = false) async throws
        -> PeerIdentity
    {
        let peer = try requirePeer([.agent], for: action)
        try await nodes.requireSiteAgent(peer, for: action, registering: registering)
        return peer
    }
}
