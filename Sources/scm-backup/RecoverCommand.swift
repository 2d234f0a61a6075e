import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Crypto
import Foundation

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Restore a source from its artifact: verified, checked by its own tool, then moved into place.",
        discussion: """
            With --store, from an artifact in that store on this machine. With --node, through the \
            site (admin, audited): the coordinator picks the artifact and the copy (--from, else \
            the most recently verified intact one) and the agent on NODE reads it into a scratch \
            folder beside the target, checks it against the catalog's digest and restores it, \
            only into a folder of its agent.toml's recovery_roots. A Trac environment backed up \
            with its svn repository gets both back from the same stamp (the repository to --svn-to, \
            else to its path in the site configuration). The newest artifact not flagged as a \
            regression is used unless --at names a stamp. An svn repository must pass svnadmin \
            verify, a git repository git fsck, a Trac database its integrity check (and its \
            repositories are resynced), before it replaces anything. An existing target is \
            refused unless --force, which moves it aside, never deletes it. Exit 1 when it failed, \
            10 when the coordinator cannot be reached.
            """
    )

    @Option(help: "The store folder (recover on this machine).")
    var store: String?
    @Option(help: "The node to recover on, through the site (its agent does the work).")
    var node: String?
    @Option(name: [.customLong("source"), .customLong("name")], help: "The source's name.")
    var source: String
    @Option(help: "The origin node, when several nodes have a source of that name.")
    var origin: String?
    @Option(
        help: "The source's kind, when sources of several kinds have that name (a Trac environment and its repository)."
    )
    var kind: String?
    @Option(help: "The artifact's stamp, YYYY/MM/DD/HHMMSS or YYYYMMDDHHMMSS. The default is the newest good one.")
    var at: String?
    @Option(help: "Where the source goes: a repository or environment folder, or a database file path.")
    var to: String
    @Option(help: "With --node: the node whose copy to read. The default is the most recently verified intact copy.")
    var from: String?
    @Option(help: "With --node, for a Trac environment with an svn_source: where its repository goes.")
    var svnTo: String?
    @Flag(help: "Move an existing target aside to <target>.before-recover-<stamp> and replace it.")
    var force = false
    @Option(help: "USER:GROUP to own the recovered files (names or numbers).")
    var owner: String?
    @Option(help: "With --node: seconds between two looks at the task.") var pollSeconds: Double = 1
    @Flag(help: "With --node, for a folder source: replace every differing file without asking.")
    var yes = false
    @Flag(help: "With --node, for a folder source: show credential-looking lines of the diffs unmasked.")
    var showSecrets = false
    @OptionGroup var tools: ToolOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (store == nil) != (node == nil) else {
            throw ValidationError("Give --store (recover on this machine) or --node (through the site), not both.")
        }
        if store != nil, from != nil || svnTo != nil || yes || showSecrets {
            throw ValidationError(
                "--from, --svn-to, --yes and --show-secrets are for a recovery through the site (--node); use recover-config for a folder here."
            )
        }
        if let kind, SourceKind(rawValue: kind) == nil {
            throw ValidationError(
                "--kind '\(kind)' is not one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() async throws {
        if let store { return try local(store) }
        guard let node else { throw ValidationError("Give --store or --node.") }  // validate() requires one
        try await runSiteCommand(json: output.json) { try await throughSite(node) }
    }

    private func local(_ root: String) throws {
        let printer = Printer(json: output.json)
        try printer.run {
            let store = Store(root: root)
            let artifact = try store.findArtifact(name: source, origin: origin, kind: kind, at: at)
            let report = try store.recover(artifact, to: to, force: force, owner: owner, tools: try tools.tools())
            if output.json {
                try printer.printJSON(report)
            } else {
                print(
                    "recovered \(report.kind) source '\(source)' revision \(report.revision ?? "-") from \(report.artifact)"
                )
                print("  into \(report.target)")
                if let aside = report.movedAside { print("  the previous \(report.target) was moved to \(aside)") }
            }
        }
    }

    /// Queues the recover task, follows it (progress on standard error) and answers as the
    /// local command: its summary, or its failure with the same code. A folder source comes
    /// back as a preview sealed to a key made for this run only: its diffs are shown here,
    /// each changed file replaced after a yes (or --yes) by a second task naming exactly those
    /// files as they were shown; exit 3 when some were left as they are.
    private func throughSite(_ node: String) async throws {
        let oneTime = Curve25519.KeyAgreement.PrivateKey()
        let request = RecoverRequest(
            source: source, origin: origin, kind: kind.flatMap(SourceKind.init(rawValue:)), node: node,
            to: to.hasPrefix("/") ? to : FileManager.default.currentDirectoryPath + "/" + to, from: from, at: at,
            force: force ? true : nil, owner: owner, svnTo: svnTo,
            previewKey: oneTime.publicKey.rawRepresentation.base64EncodedString(), showSecrets: showSecrets ? true : nil
        )
        try await CoordinatorClient.with(try connection.endpoint()) { client in
            let task = try await follow(try await client.recover(request), client: client, node: node)
            guard task.recover?.preview != nil else {
                if output.json { return try Printer(json: true).printJSON(task) }
                for line in (task.detail ?? "").split(separator: ";") {
                    print(line.trimmingCharacters(in: .whitespaces))
                }
                return
            }
            let preview = try await client.recoveryPreview(task.id).open(with: oneTime, task: task.id)
            try await confirmAndApply(preview, previewed: task, request: request, client: client, node: node)
        }
    }

    /// Shows each change of a folder's preview, asks, and replaces what was confirmed.
    private func confirmAndApply(
        _ preview: FolderPreview, previewed: TaskInfo, request: RecoverRequest, client: CoordinatorClient,
        node: String
    ) async throws {
        var chosen: [FolderFile] = []
        if output.json {
            try Printer(json: true).printJSON(preview)
            if yes { chosen = preview.changes.map(\.file) }
        } else {
            print("comparing \(node):\(preview.target) with \(preview.artifact) on \(preview.from)")
            if preview.identical > 0 { print("\(preview.identical) files are as the backup has them") }
            for change in preview.changes {
                print(
                    "\(change.file.name): \(change.state == "changed" ? "differs from the backup" : "missing; the backup has it")"
                        + (change.masked.map { " (\($0) credential-looking lines masked; --show-secrets shows them)" }
                            ?? ""))
                print(change.diff, terminator: change.diff.hasSuffix("\n") ? "" : "\n")
                var replace = yes
                if !yes {
                    print(
                        "Replace \(preview.target)/\(change.file.name) with the backup's version? [y/N] ",
                        terminator: "")
                    replace = ["y", "yes"].contains(readLine()?.lowercased() ?? "")
                }
                if replace { chosen.append(change.file) } else { print("  left as it is") }
            }
            // Before the apply task's progress, which goes to standard error.
            fflush(nil)
        }
        let leftAlone = preview.changes.count - chosen.count
        if !chosen.isEmpty {
            guard let piece = previewed.recover?.pieces.first, let order = previewed.recover else { return }
            var apply = request
            apply.previewKey = nil
            apply.showSecrets = nil
            apply.apply = chosen
            apply.origin = order.origin
            apply.kind = .folder
            apply.at = order.stamp
            apply.from = piece.transfer.sender
            let done = try await follow(try await client.recover(apply), client: client, node: node)
            if output.json { try Printer(json: true).printJSON(done) } else { print(done.detail ?? "done") }
        } else if preview.changes.isEmpty, !output.json {
            print("nothing to replace")
        }
        if leftAlone > 0 { throw Exit.partial }
    }

    /// Follows a recover task to its end, its progress on standard error; throws its failure.
    private func follow(_ queued: TaskInfo, client: CoordinatorClient, node: String) async throws -> TaskInfo {
        var task = queued
        if !output.json {
            for piece in task.recover?.pieces ?? [] {
                FileHandle.standardError.write(
                    Data(
                        "task \(task.id): \(piece.transfer.path) (\(formatBytes(piece.transfer.size))) from \(piece.transfer.sender) to \(node):\(piece.target)\n"
                            .utf8))
            }
        }
        var last = ""
        while !task.state.isFinal {
            try await Task.sleep(for: .milliseconds(Int64(max(0.1, pollSeconds) * 1000)))
            task = try await client.task(task.id)
            let line = Self.progressLine(task)
            if !output.json, !task.state.isFinal, line != last {
                FileHandle.standardError.write(Data("  \(line)\n".utf8))
                last = line
            }
        }
        guard task.state == .succeeded else { throw Self.failure(of: task) }
        return task
    }

    static func progressLine(_ task: TaskInfo) -> String {
        guard let progress = task.progress else { return task.state.rawValue }
        var line = progress.step
        if let done = progress.bytesDone, let total = progress.bytesTotal, total > 0 {
            line += ": \(formatBytes(done)) of \(formatBytes(total)) (\(done * 100 / total) %)"
        }
        return line
    }

    /// The task's failure as the error the local command would have thrown.
    static func failure(of task: TaskInfo) -> BackupError {
        BackupError(
            task.lastErrorCode ?? .taskFailed,
            "Recover task \(task.id) on '\(task.node)' \(task.state.rawValue): \(task.lastError ?? "no reason given")")
    }
}
