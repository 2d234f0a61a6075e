import BackupCore
import BackupProtocol
import Foundation
import Logging

/// A `recover` task on the node being recovered (`scm-backup recover --node`): every target is
/// checked against this node's own `recovery_roots` before a byte moves; each artifact is read
/// from the copy the order names into a scratch store beside its target (never this node's
/// store, never the catalog), its bytes checked against the catalog's reference as they land,
/// then restored by the local recover code (read through, checked by the kind's own tool,
/// `force` rules as the local command); the scratch folder is removed afterwards. A piece
/// whose copy is this node's own is read from its store, its sidecar first compared with the
/// reference. Pieces are restored in order: an svn repository before the Trac environment
/// backed up with it.
struct RecoverRunner: Sendable {
    let configuration: AgentConfiguration
    let progress: ProgressBox
    let logger: Logger

    func run(_ task: TaskInfo) async throws -> TaskOutcome {
        guard case .recover(let order) = try task.spec() else {
            throw BackupError(.invalidArgument, "Task \(task.id) is not a recover task.")
        }
        let node = configuration.node
        let force = order.force == true
        // Every refusal before any byte is read.
        var targets: [String] = []
        for piece in order.pieces {
            let target = try RecoveryRoots.check(piece.target, roots: configuration.recoveryRoots, node: node)
            let transfer = piece.transfer
            guard transfer.receiver == node, transfer.purpose == .recover else {
                throw BackupError(
                    .refused,
                    "Recover task \(task.id) would have node '\(node)' read '\(transfer.path)' as '\(transfer.receiver)'; it is refused."
                )
            }
            if transfer.sender != node, let peers = configuration.peers, !peers.contains(transfer.sender) {
                throw BackupError(
                    .notAPeer,
                    "Node '\(node)' exchanges artifacts only with its peers (\(peers.sorted().joined(separator: ", "))), not '\(transfer.sender)'; recover task \(task.id) is refused."
                )
            }
            if target == configuration.storePath || target.hasPrefix(configuration.storePath + "/")
                || configuration.storePath.hasPrefix(target + "/")
            {
                throw BackupError(
                    .outsideRecoveryRoots,
                    "'\(target)' is this node's store or inside it; a recovery never writes there.")
            }
            if !force, try FileSystem.linkStatus(target) != nil {
                throw BackupError(
                    .refused,
                    "'\(target)' already exists on '\(node)'; recover refuses to replace it. Use --force to move it aside first."
                )
            }
            targets.append(target)
        }
        guard Set(targets).count == targets.count else {
            throw BackupError(.invalidArgument, "Recover task \(task.id) names one target twice: \(targets).")
        }
        var done: [String] = []
        for (piece, target) in zip(order.pieces, targets) {
            let report = try await restore(piece, to: target, order: order, task: task)
            logger.notice(
                "source recovered",
                metadata: [
                    "scm.task": "\(task.id)", "scm.source": "\(piece.source)", "scm.artifact": "\(piece.transfer.path)",
                    "scm.from": "\(piece.transfer.sender)", "scm.target": "\(report.target)",
                    "scm.movedAside": "\(report.movedAside ?? "-")",
                ])
            done.append(
                "recovered \(report.kind) source '\(piece.source)' revision \(report.revision ?? "-") from \(piece.transfer.path) on \(piece.transfer.sender) into \(report.target)"
                    + (report.movedAside.map { " (the previous one moved to \($0))" } ?? ""))
        }
        return TaskOutcome(detail: done.joined(separator: "; "), artifacts: nil)
    }

    /// Reads one piece (from this node's store or into scratch beside `target`) and restores it.
    private func restore(_ piece: RecoverOrder.Piece, to target: String, order: RecoverOrder, task: TaskInfo)
        async throws -> RecoverReport
    {
        let transfer = piece.transfer
        let reference = ArtifactDigests(size: transfer.size, sha256: transfer.sha256, md5: transfer.md5)
        let tools = configuration.tools
        let force = order.force == true
        let owner = order.owner
        if transfer.sender == configuration.node {
            let store = try configuration.store()
            let location = try store.location(ofRelative: transfer.path)
            let path = store.path(of: location)
            guard try FileSystem.linkStatus(path) != nil else {
                throw BackupError(.notFound, "Node '\(configuration.node)' holds no '\(transfer.path)'.")
            }
            let dna = try DNA.decode(try FileSystem.readSmallFile(path + ".dna"), path: path + ".dna")
            guard (dna.sha256 ?? dna.md5) == (reference.sha256 ?? reference.md5), dna.size == reference.size else {
                throw BackupError(
                    .sidecarInvalid,
                    "The sidecar of '\(transfer.path)' on '\(configuration.node)' does not match the catalog's digest and size; pick another copy with --from."
                )
            }
            progress.set("restoring \(piece.source) into \(target)")
            let artifact = StoredArtifact(path: path, location: location, size: dna.size, hasSidecar: true)
            return try await FileWork.run {
                try store.recover(artifact, to: target, force: force, owner: owner, tools: tools)
            }
        }
        guard let ticket = transfer.ticket, let peerURL = transfer.peerURL, let facts = transfer.facts else {
            throw BackupError(
                .io,
                "Node '\(transfer.sender)' has no data port the coordinator knows of (is its agent running with data_listen?), or task \(task.id) came without its ticket."
            )
        }
        let parent = (target as NSString).deletingLastPathComponent
        let scratch = parent + "/.scm-backup-recover-task-\(task.id)"
        if try FileSystem.linkStatus(scratch) != nil { try FileManager.default.removeItem(atPath: scratch) }
        try FileSystem.makeDirectories(scratch + "/store", mode: 0o700)
        defer {
            do { try FileManager.default.removeItem(atPath: scratch) } catch {
                logger.warning(
                    "the recovery's scratch folder is left behind",
                    metadata: ["scm.path": "\(scratch)", "scm.error": "\(error)"])
            }
        }
        let scratchStore = Store(root: scratch + "/store")
        let progress = progress
        let step = "reading \(transfer.path) from \(transfer.sender)"
        progress.set(step, done: 0, total: transfer.size)
        let published = try await DataPortFetch.with(
            url: peerURL, node: transfer.sender, identity: configuration.coordinator
        ) { port in
            try await port.fetch(
                transfer.path, ticket: ticket, dna: facts.sidecar(path: transfer.path, digests: reference),
                into: scratchStore, receipt: transfer.receipt,
                progress: { progress.set(step, done: $0, total: transfer.size) }
            ).published
        }
        progress.set("restoring \(piece.source) into \(target)")
        let artifact = StoredArtifact(
            path: scratchStore.path(of: published.location), location: published.location, size: transfer.size,
            hasSidecar: true)
        return try await FileWork.run {
            try scratchStore.recover(artifact, to: target, force: force, owner: owner, tools: tools)
        }
    }
}
