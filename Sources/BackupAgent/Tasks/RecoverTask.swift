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
            if piece.kind != .folder, !force, try FileSystem.linkStatus(target) != nil {
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
        if let piece = order.pieces.first, piece.kind == .folder {
            guard order.pieces.count == 1 else {
                throw BackupError(.invalidArgument, "Recover task \(task.id) names a folder source with other pieces.")
            }
            return try await folder(piece, target: targets[0], order: order, task: task)
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

    /// A folder source, file by file: a preview (every differing or missing file with its
    /// diff, credential-looking lines masked unless asked, sealed to the admin CLI's one-time
    /// key, nothing changed), or exactly the files the admin confirmed, each only if its live
    /// and backup bytes are still the ones compared.
    private func folder(_ piece: RecoverOrder.Piece, target: String, order: RecoverOrder, task: TaskInfo)
        async throws -> TaskOutcome
    {
        let transfer = piece.transfer
        let from = "\(transfer.path) on \(transfer.sender)"
        return try await withArtifact(piece, beside: target, task: task) { store, artifact in
            guard let location = artifact.location else {
                throw BackupError(.invalidArgument, "'\(artifact.path)' is not in the store layout.")
            }
            progress.set("comparing \(piece.source) with \(target)")
            if let preview = order.preview {
                let showSecrets = preview.showSecrets == true
                let compared = try await FileWork.run {
                    try store.withConfigChanges(
                        name: location.source, origin: location.origin, at: location.stamp, liveFolder: target
                    ) { _, changes in
                        Self.preview(changes, showSecrets: showSecrets, artifact: transfer, target: target)
                    }
                }
                let sealed = try SealedPreview.seal(compared, task: task.id, keyBase64: preview.key)
                let differ = compared.changes.filter { $0.state == "changed" }.count
                return TaskOutcome(
                    detail:
                        "compared \(piece.source) from \(from) with \(target): \(differ) files differ, \(compared.changes.count - differ) missing, \(compared.identical) identical; nothing changed (the comparison went sealed to the admin's CLI)",
                    artifacts: nil, sealed: sealed)
            }
            guard let files = order.apply else {
                throw BackupError(
                    .invalidArgument, "Recover task \(task.id) of a folder source carries neither a preview nor files.")
            }
            let replaced = try await FileWork.run {
                try store.withConfigChanges(
                    name: location.source, origin: location.origin, at: location.stamp, liveFolder: target,
                    only: files.map(\.name)
                ) { _, changes in
                    try store.applyConfigChanges(
                        changes, wanted: files.map { ($0.name, $0.liveSha256, $0.backupSha256) })
                }
            }
            for file in replaced {
                logger.notice(
                    "configuration file recovered",
                    metadata: [
                        "scm.task": "\(task.id)", "scm.file": "\(target)/\(file.name)",
                        "scm.kept": "\(file.kept ?? "-")", "scm.artifact": "\(transfer.path)",
                    ])
            }
            guard !replaced.isEmpty else {
                return TaskOutcome(
                    detail: "every named file in \(target) is already as \(from) has it; nothing changed",
                    artifacts: nil)
            }
            return TaskOutcome(
                detail: "replaced in \(target) from \(from): "
                    + replaced.map { "\($0.name)" + ($0.kept.map { " (the previous one kept as \($0))" } ?? " (new)") }
                    .joined(separator: ", "),
                artifacts: nil)
        }
    }

    /// Diffs shown at most this many bytes in all; a longer one is named, not shown.
    static let previewBudget = 512 << 10

    static func preview(_ changes: [ConfigChange], showSecrets: Bool, artifact: TransferOrder, target: String)
        -> FolderPreview
    {
        var budget = previewBudget
        var shown: [FolderPreview.Change] = []
        var identical = 0
        for change in changes.sorted(by: { $0.name < $1.name }) {
            guard change.state != .identical else {
                identical += 1
                continue
            }
            // The backup's side is named by the artifact, not by this node's scratch path.
            let diff = change.diff.replacingOccurrences(of: change.backup, with: "\(artifact.path):\(change.name)")
            var (text, masked) = showSecrets ? (diff, 0) : SecretMask.apply(toDiff: diff, file: change.name)
            if text.utf8.count > budget {
                text = "(a diff of \(text.utf8.count) bytes, more than this preview shows; compare the file by hand)\n"
                masked = 0
            }
            budget -= text.utf8.count
            shown.append(
                FolderPreview.Change(
                    file: FolderFile(
                        name: change.name, liveSha256: change.liveSha256, backupSha256: change.backupSha256),
                    state: change.state == .changed ? "changed" : "new", diff: text, masked: masked > 0 ? masked : nil))
        }
        return FolderPreview(
            artifact: artifact.path, from: artifact.sender, target: target, identical: identical, changes: shown)
    }

    /// Reads one piece (from this node's store or into scratch beside `target`) and restores it.
    private func restore(_ piece: RecoverOrder.Piece, to target: String, order: RecoverOrder, task: TaskInfo)
        async throws -> RecoverReport
    {
        let tools = configuration.tools
        let force = order.force == true
        let owner = order.owner
        return try await withArtifact(piece, beside: target, task: task) { store, artifact in
            progress.set("restoring \(piece.source) into \(target)")
            return try await FileWork.run {
                try store.recover(artifact, to: target, force: force, owner: owner, tools: tools)
            }
        }
    }

    /// Runs `body` with the piece's artifact: in this node's store when its copy is this
    /// node's (its sidecar compared with the catalog's reference first), else read from the
    /// sender's data port into a scratch store beside `target`, removed afterwards.
    func withArtifact<T: Sendable>(
        _ piece: RecoverOrder.Piece, beside target: String, task: TaskInfo,
        _ body: (Store, StoredArtifact) async throws -> T
    ) async throws -> T {
        let transfer = piece.transfer
        let reference = ArtifactDigests(size: transfer.size, sha256: transfer.sha256, md5: transfer.md5)
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
            return try await body(
                store, StoredArtifact(path: path, location: location, size: dna.size, hasSidecar: true))
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
        return try await body(
            scratchStore,
            StoredArtifact(
                path: scratchStore.path(of: published.location), location: published.location, size: transfer.size,
                hasSidecar: true))
    }
}
