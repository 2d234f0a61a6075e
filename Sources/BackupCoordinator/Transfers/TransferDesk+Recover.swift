import BackupCore
import BackupProtocol
import Foundation

/// Recovery through the site (`POST /v1/recoveries`): which artifact, from which copy, to
/// where. The hub names only what its catalog lists and the site defines; whether the target
/// is a place the node restores into is the node's own decision (`recovery_roots`), made by
/// its agent before a byte moves.
extension TransferDesk {
    /// Picks the artifact (and, for a Trac environment with an `svn_source`, its repository
    /// from the same stamp) and the copy of each, and queues one `recover` task on the target.
    func planRecovery(_ request: RecoverRequest, now: Date) async throws -> TaskInfo {
        guard ticketKey != nil else {
            throw BackupError(
                .noTicketKey,
                "The coordinator has no ticket_key configured, so it cannot authorise a recovery; add ticket_key to [coordinator]."
            )
        }
        for node in [request.node] + (request.from.map { [$0] } ?? []) where site.node(node) == nil {
            throw BackupError(.unknownNode, "Node '\(node)' is not in the site configuration.")
        }
        for (field, path) in [("to", request.to), ("svnTo", request.svnTo)] {
            guard let path else { continue }
            guard path.hasPrefix("/"), path.count > 1, !path.contains("\0"),
                !path.split(separator: "/").contains("..")
            else {
                throw BackupError(
                    .invalidArgument, "\(field)='\(path.prefix(200))' is not an absolute path without '..'.")
            }
        }
        let named = try await catalog.artifacts(source: request.source).filter {
            (request.origin == nil || $0.origin == request.origin)
                && (request.kind == nil || SourceKind(storeName: $0.kind) == request.kind)
        }
        guard !named.isEmpty else {
            throw BackupError(
                .notFound,
                "The catalog lists no artifact of source '\(request.source)'"
                    + (request.origin.map { " from node '\($0)'" } ?? "")
                    + (request.kind.map { " of kind \($0.rawValue)" } ?? "") + ".")
        }
        let folders = Set(named.map { "\($0.origin)/\($0.kind)/\($0.source)" })
        guard folders.count == 1 else {
            throw BackupError(
                .ambiguousSource,
                "Source name '\(request.source)' is ambiguous: \(folders.sorted().joined(separator: ", ")); name the node with --origin or the kind with --kind."
            )
        }
        let artifact = try pick(named.sorted { $0.stamp < $1.stamp }, request)
        guard let kind = SourceKind(storeName: artifact.kind) else {
            throw BackupError(
                .invalidArgument, "Artifact '\(artifact.fileName)' is of unknown kind '\(artifact.kind)'.")
        }
        let copy = try bestCopy(of: artifact, from: request.from)
        var pieces: [RecoverOrder.Piece] = []
        if kind == .trac, let paired = site.node(artifact.origin)?.sources[artifact.source]?.svnSource {
            // The repository the environment links to, from the same stamp (backed up under
            // one svnadmin freeze), restored first.
            let svn = try await catalog.artifacts(source: paired.name).first {
                $0.origin == artifact.origin && SourceKind(storeName: $0.kind) == .svn && $0.stamp == artifact.stamp
            }
            guard let svn else {
                throw BackupError(
                    .notFound,
                    "Trac environment '\(artifact.source)' of '\(artifact.origin)' is backed up with svn repository '\(paired.name)', which has no artifact at stamp \(artifact.stamp) in the catalog; recover them separately with --kind."
                )
            }
            var svnCopy = try bestCopy(of: svn, from: request.from)
            if let beside = svn.copies.first(where: { $0.node == copy.node && !$0.state.isBad }) { svnCopy = beside }
            pieces.append(
                piece(svn, kind: .svn, copy: svnCopy, target: request.svnTo ?? paired.path, node: request.node))
        }
        pieces.append(piece(artifact, kind: kind, copy: copy, target: request.to, node: request.node))
        var order = RecoverOrder(
            pieces: pieces, origin: artifact.origin, stamp: artifact.stamp, force: request.force,
            owner: request.owner)
        if kind == .folder {
            // Two steps: a preview sealed to the admin's CLI, then exactly the files it confirmed.
            if let files = request.apply {
                guard !files.isEmpty else {
                    throw BackupError(.invalidArgument, "apply names no file; nothing to replace.")
                }
                for file in files
                where file.name.isEmpty || file.name.hasPrefix("/") || file.name.contains("\0")
                    || file.name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
                {
                    throw BackupError(
                        .invalidArgument, "apply names '\(file.name.prefix(200))', not a path inside the folder.")
                }
                order.apply = files
            } else if let key = request.previewKey {
                order.preview = RecoverOrder.Preview(key: key, showSecrets: request.showSecrets)
            } else {
                throw BackupError(
                    .invalidArgument,
                    "Folder source '\(artifact.source)' is recovered file by file: a preview (previewKey) first, then apply; 'scm-backup recover' does both."
                )
            }
        } else if request.apply != nil {
            throw BackupError(
                .invalidArgument,
                "apply is for a folder source; '\(artifact.source)' is a \(kind.rawValue) source, restored whole.")
        }
        let task = try await catalog.submitRecover(node: request.node, source: artifact.source, order: order, now: now)
        await signals.signal(request.node)
        logger.info(
            "recovery queued",
            metadata: [
                "scm.task": "\(task.id)", "scm.source": "\(artifact.origin)/\(artifact.kind)/\(artifact.source)",
                "scm.stamp": "\(artifact.stamp)", "scm.node": "\(request.node)",
                "scm.from": "\(pieces.map(\.transfer.sender).joined(separator: ","))",
            ])
        return task
    }

    /// The artifact at `request.at`, else the newest without regressions that has a copy to
    /// read (on `request.from` when given), else the newest that has one.
    private func pick(_ artifacts: [ArtifactInfo], _ request: RecoverRequest) throws -> ArtifactInfo {
        if let at = request.at {
            let wanted = at.replacingOccurrences(of: "/", with: "")
            guard let match = artifacts.last(where: { $0.stamp.replacingOccurrences(of: "/", with: "") == wanted })
            else {
                throw BackupError(
                    .notFound,
                    "Source '\(request.source)' has no artifact at stamp '\(at.prefix(40))'; the catalog has: \(artifacts.map(\.stamp).joined(separator: ", "))."
                )
            }
            return match
        }
        let readable = artifacts.filter { usableCopy(of: $0, from: request.from) != nil }
        if let good = readable.last(where: { ($0.regressions ?? []).isEmpty }) ?? readable.last { return good }
        throw BackupError(
            .notFound,
            "No artifact of source '\(request.source)' has a copy to read"
                + (request.from.map { " on '\($0)'" } ?? "")
                + " (every copy is missing, failed verification or has no reference digest).")
    }

    /// The copy to read: on `from` when given (not known bad), else the intact copy verified
    /// most recently, else an unverified one (the target checks its bytes against the
    /// catalog's reference either way). An artifact without a reference digest has none.
    func bestCopy(of artifact: ArtifactInfo, from: String?) throws -> CopyInfo {
        let name = "\(artifact.origin)/\(artifact.kind)/\(artifact.source)/\(artifact.stamp)"
        guard artifact.sha256 != nil || artifact.md5 != nil else {
            throw BackupError(
                .notFound,
                "Artifact \(name) has no reference digest (its origin never confirmed it), so nothing vouches for its bytes."
            )
        }
        guard let copy = usableCopy(of: artifact, from: from) else {
            let states = artifact.copies.map { "\($0.node): \($0.state.rawValue)" }.joined(separator: ", ")
            throw BackupError(
                .notFound,
                "Artifact \(name) has no copy to read\(from.map { " on '\($0)'" } ?? "") (\(states.isEmpty ? "no copies" : states))."
            )
        }
        return copy
    }

    /// ``bestCopy(of:from:)``'s choice, or nil where it names why there is none.
    func usableCopy(of artifact: ArtifactInfo, from: String?) -> CopyInfo? {
        guard artifact.sha256 != nil || artifact.md5 != nil else { return nil }
        let usable = artifact.copies.filter { !$0.state.isBad && (from == nil || $0.node == from) }
        let intact = usable.filter { $0.state == .intact }.sorted {
            ($0.verifiedAt ?? .distantPast, $0.node) > ($1.verifiedAt ?? .distantPast, $1.node)
        }
        return intact.first ?? usable.first
    }

    private func piece(_ artifact: ArtifactInfo, kind: SourceKind, copy: CopyInfo, target: String, node: String)
        -> RecoverOrder.Piece
    {
        RecoverOrder.Piece(
            kind: kind, source: artifact.source, target: target,
            transfer: TransferOrder(
                path: copy.path, sha256: artifact.sha256, md5: artifact.md5, size: artifact.size, sender: copy.node,
                receiver: node, direction: .pull, purpose: .recover))
    }
}
