import BackupCore
import BackupProtocol
import Foundation

/// The site's nodes as the hub knows them: who may act as an agent (a node of the site file,
/// registered unless it is registering), registrations, heartbeats, and the merged list an
/// operator sees. Domain only: it throws registered codes and knows no HTTP.
public struct NodeRegistry: Sendable {
    let sites: SiteSource
    /// The site as it is now (a reload replaces it).
    var site: SiteConfiguration { sites.current }
    let catalog: Catalog
    let wallClock: any WallClock
    /// Agents are asked to send heartbeats this often; three missed ones mean offline.
    let heartbeatSeconds: Int

    /// `peer`, when it is an agent of the site loaded now and registered (unless registering):
    /// a certificate of a node the site lacks gets nowhere.
    public func requireSiteAgent(_ peer: PeerIdentity, for action: String, registering: Bool = false) async throws {
        guard site.node(peer.name) != nil else {
            throw BackupError(
                .unknownNode,
                "Node '\(AuditText.escape(peer.name))' is not in the site configuration; add a [nodes.\(AuditText.escape(peer.name))] table on the hub."
            )
        }
        if !registering, try await !catalog.isRegistered(peer.name) {
            throw BackupError(.notRegistered, "Agent '\(peer.name)' must register before it may \(action).")
        }
    }

    /// Records a registration; returns the hub's time of it.
    public func register(_ peer: PeerIdentity, _ request: RegisterRequest) async throws -> Date {
        let now = wallClock.currentDate
        try await catalog.register(name: peer.name, role: peer.role, request, now: now)
        return now
    }

    /// Records a heartbeat; returns the hub's time of it.
    public func heartbeat(_ peer: PeerIdentity, _ request: HeartbeatRequest) async throws -> Date {
        let now = wallClock.currentDate
        guard
            try await catalog.heartbeat(
                name: peer.name, diskFree: request.diskFree, agentClock: request.agentClock,
                trashBytes: request.trashBytes, quarantineBytes: request.quarantineBytes, now: now)
        else {
            throw BackupError(.notRegistered, "Agent '\(peer.name)' must register before sending heartbeats.")
        }
        return now
    }

    /// Every configured node, registered or not, and any registered one no longer configured,
    /// by name.
    public func list() async throws -> [NodeStatus] {
        var nodes = try await catalog.nodes(now: wallClock.currentDate, onlineWithin: Double(3 * heartbeatSeconds))
        for i in nodes.indices { nodes[i].roles = site.node(nodes[i].name)?.roles.map(\.rawValue).sorted() }
        for node in site.nodes.values where !nodes.contains(where: { $0.name == node.name }) {
            nodes.append(
                NodeStatus(
                    name: node.name, role: "agent", version: nil, storePath: nil, diskTotal: nil, diskFree: nil,
                    kinds: [], registeredAt: nil, lastHeartbeatAt: nil, online: false,
                    roles: node.roles.map(\.rawValue).sorted()))
        }
        return nodes.sorted { $0.name < $1.name }
    }
}
