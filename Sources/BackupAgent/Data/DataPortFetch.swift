import AsyncHTTPClient
import BackupClient
import BackupCore
import BackupProtocol
import Foundation
import NIOCore

/// Reads from another node's data port with a ticket the caller holds: the index of one
/// source's copies, or one artifact into a store of the caller's choosing (a scratch store,
/// never the catalog's), its digests checked against the DNA the caller trusts (built from a
/// receipt it verified, never from the sender) before it appears under its final name.
/// `scm-backup hub restore` reads its self-backup so; see `Protocol/hub.md`.
public struct DataPortFetch: Sendable {
    let http: HTTPClient
    let peer: PinnedPeer
    let node: String

    /// Runs `body` with a client that presents `identity`'s certificate and accepts only the
    /// agent certificate of `node` at `url` (its data port).
    public static func with<T: Sendable>(
        url: String, node: String, identity: CoordinatorEndpoint, _ body: (DataPortFetch) async throws -> T
    ) async throws -> T {
        let peer = try PinnedPeer(url: url, name: node, role: .agent)
        return try await CoordinatorClient.withHTTPClient(identity, pinnedTo: peer) { http in
            try await body(DataPortFetch(http: http, peer: peer, node: node))
        }
    }

    /// The copies of `<origin>/<kind>/<source>` the node holds, each with its sidecar's
    /// digests and its receipt as the node read them (unverified).
    public func index(_ source: String, ticket: String) async throws -> [CopyReport] {
        var request = HTTPClientRequest(url: peer.dialURL + "/v1/index/" + source)
        request.headers.add(name: DataHeader.ticket, value: ticket)
        let response = try await TransferRunner.execute(request, via: http, to: node, timeout: .seconds(120))
        try await TransferRunner.requireSuccess(response, what: "index", of: source, at: node)
        let body = try await response.body.collect(upTo: 64 << 20)
        do { return try WireJSON.decoder().decode(ArtifactReport.self, from: Data(buffer: body)).copies } catch {
            throw BackupError(
                .invalidArgument,
                "The index of '\(source)' from '\(node)' does not decode: \(WireJSON.describe(error)).")
        }
    }

    /// Reads the artifact at `path` into `store`, published only when its bytes are `dna`'s;
    /// `receipt` is written beside it; `progress` is told the bytes read so far. Returns it with
    /// the digests computed here.
    public func fetch(
        _ path: String, ticket: String, dna: DNA, into store: Store, receipt: String?,
        progress: (@Sendable (Int64) -> Void)? = nil
    ) async throws -> (published: PublishedArtifact, computed: ArtifactDigests) {
        let location = try store.location(ofRelative: path)
        var request = HTTPClientRequest(url: peer.dialURL + "/v1/data/" + path)
        request.headers.add(name: DataHeader.ticket, value: ticket)
        let response = try await TransferRunner.execute(request, via: http, to: node, timeout: .hours(24))
        try await TransferRunner.requireSuccess(response, what: "GET", of: path, at: node)
        let incoming = try await ReceivingArtifact.open(
            store: store, location: location, dna: dna, discardPartial: true, receipt: receipt)
        var read: Int64 = 0
        for try await buffer in response.body {
            try await incoming.append(buffer)
            read += Int64(buffer.readableBytes)
            progress?(read)
        }
        return try await incoming.finish()
    }
}
