import ArgumentParser
import BackupAgent
import BackupClient
import BackupCoordinator
import BackupCore
import BackupProtocol
import Foundation

struct HubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Bring a hub back: restore its catalog and site file from its self-backup on a backup node.",
        subcommands: [Restore.self]
    )

    /// `hub restore --config FILE --from NODE`: on a new hub, before its coordinator starts.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore the catalog and the site file from the newest self-backup a backup node holds.",
            discussion: """
                Run on the new hub before its coordinator starts. FILE is this hub's site file, which \
                may hold only its [coordinator] table (certificate, key, ca, ticket_key, database, \
                listen): that table is kept, every other table comes from the snapshot. The self-backup is read from NODE's data \
                port with restore tickets this hub signs; its receipt must verify with this hub's \
                ticket key or a --trusted-key, its bytes must be the receipt's and every file the \
                snapshot's manifest names must match. The catalog gets a new epoch and purging \
                stays paused site-wide until 'scm-backup purge resume'. A catalog already at the \
                database path is never replaced.
                """)
        @Option(help: "This hub's site file (its [coordinator] table is kept).") var config: String
        @Option(help: "The backup node holding the self-backup.") var from: String
        @Option(help: "NODE's data port, https://HOST:PORT. The default is its first address, port --data-port.")
        var dataURL: String?
        @Option(help: "NODE's data port when --data-url is not given.") var dataPort = 8444
        @Option(help: "The self-backup artifact's stamp (YYYY/MM/DD/HHMMSS). The default is the newest.") var at:
            String?
        @Option(help: "The hub node whose self-backup to read. The default is the one the site file names.")
        var origin: String?
        @Option(help: "The self-backup's source name. The default is the folder source at self_backup.") var source:
            String?
        @Option(help: "A public key whose receipts to trust besides this hub's own (the old hub's, repeatable).")
        var trustedKey: [String] = []
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await runSiteCommand(json: output.json) {
                let report = try await restore()
                if output.json { return try Printer(json: true).printJSON(report) }
                print("restored the hub from \(report.artifact) on \(from) (snapshot \(report.snapshot))")
                print("  catalog \(report.database): \(report.artifacts) artifacts, \(report.copies) copies")
                print("  epoch \(report.previousEpoch) -> \(report.epoch)")
                print("  site file \(config) (the one before it: \(report.previousSiteFile))")
                if let list = report.revocationList { print("  revocation list \(list)") }
                print("  purging is paused site-wide: check the site, then 'scm-backup purge resume'")
            }
        }

        struct Report: Encodable {
            var artifact: String
            var snapshot: String
            var takenAt: Date
            var database: String
            var artifacts: Int
            var copies: Int
            var previousEpoch: String
            var epoch: String
            var previousSiteFile: String
            var revocationList: String?
        }

        func restore() async throws -> Report {
            let bootstrap = try CoordinatorConfiguration.load(config, coordinatorOnly: true)
            guard let keyPath = bootstrap.ticketKey else {
                throw BackupError(
                    .noTicketKey,
                    "'\(config)' has no ticket_key in [coordinator]: this hub signs the tickets it reads its self-backup with (restore the keys with 'scm-backup pki import-hub')."
                )
            }
            let key = try Ed25519PEM.readPrivateKey(keyPath)
            var trusted = SigningKeyring(key.publicKey, file: keyPath)
            for file in trustedKey {
                do { trusted.add(try Ed25519PEM.readPublicKey(file), file: file) } catch {
                    throw BackupError(
                        .invalidArgument, "--trusted-key '\(file)' is not an Ed25519 public key: \(error)")
                }
            }
            let me = try PeerIdentity(certificate: try PEMFiles.certificate(bootstrap.certificate))
            let (hubNode, sourceName) = try selfBackupSource(bootstrap)
            let url = try dataPortURL(bootstrap)
            let identity = CoordinatorEndpoint(
                url: url, certificate: bootstrap.certificate, privateKey: bootstrap.privateKey,
                caCertificate: bootstrap.caCertificate)
            let sourcePath = "\(hubNode)/\(SourceKind.folder.rawValue)/\(sourceName)"
            func ticket(_ path: String, size: Int64, sha256: String?) throws -> String {
                try TransferTicket(
                    epoch: "restore", taskId: 0, fencingToken: 0, purpose: .restore, path: path, sha256: sha256,
                    md5: nil, size: size, sender: from, receiver: me.name, expiresAt: Date().addingTimeInterval(3600),
                    facts: .init(
                        origin: hubNode, kind: SourceKind.folder.rawValue, source: sourceName, revision: nil,
                        created: nil)
                ).signed(with: key)
            }
            let scratch =
                (bootstrap.database as NSString).deletingLastPathComponent
                + "/.scm-backup-hub-restore-\(UUID().uuidString.prefix(8).lowercased())"
            try FileSystem.makeDirectories(scratch + "/store")
            defer {
                do { try FileManager.default.removeItem(atPath: scratch) } catch {
                    FileHandle.standardError.write(
                        Data("scm-backup: warning: the scratch folder '\(scratch)' is left behind: \(error)\n".utf8))
                }
            }
            let copy = try await DataPortFetch.with(url: url, node: from, identity: identity) { port in
                let copies = try await port.index(sourcePath, ticket: try ticket(sourcePath, size: 0, sha256: nil))
                    .sorted { $0.stamp < $1.stamp }
                guard !copies.isEmpty else {
                    throw BackupError(.notFound, "Node '\(from)' holds no artifact of '\(sourcePath)'.")
                }
                let wanted = at.map { $0.replacingOccurrences(of: "/", with: "") }
                guard
                    let copy = wanted.map({ w in copies.last { $0.stamp.replacingOccurrences(of: "/", with: "") == w } }
                    )
                        ?? copies.last
                else {
                    throw BackupError(
                        .notFound,
                        "Node '\(from)' has no artifact of '\(sourcePath)' at stamp '\(at ?? "")'; it has: \(copies.map(\.stamp).joined(separator: ", "))."
                    )
                }
                // The digest to expect comes from a receipt this hub trusts, never from the node.
                guard let text = copy.receipt else {
                    throw BackupError(
                        .receiptForged,
                        "'\(copy.path)' on '\(from)' has no receipt, so nothing vouches for its bytes; pick another with --at."
                    )
                }
                let receipt: ArtifactReceipt
                do throws(SignedEnvelope.Refusal) { receipt = try ArtifactReceipt.verify(text, keys: trusted) } catch {
                    throw BackupError(
                        error.code,
                        "The receipt of '\(copy.path)' on '\(from)' is refused: \(error.message) Give the old hub's public ticket key with --trusted-key, or pick another with --at."
                    )
                }
                guard receipt.path == copy.path, receipt.sha256 != nil else {
                    throw BackupError(
                        .receiptMismatch, "The receipt beside '\(copy.path)' on '\(from)' is of '\(receipt.path)'.")
                }
                let dna = receipt.facts.sidecar(
                    path: copy.path, digests: ArtifactDigests(size: receipt.size, sha256: receipt.sha256, md5: nil))
                _ = try await port.fetch(
                    copy.path, ticket: try ticket(copy.path, size: receipt.size, sha256: receipt.sha256), dna: dna,
                    into: Store(root: scratch + "/store"), receipt: text)
                return copy
            }
            // Extracted by the local recover code (verified again, read through), then checked.
            let store = Store(root: scratch + "/store")
            let artifact = try store.findArtifact(name: sourceName, origin: hubNode, at: copy.stamp)
            _ = try store.recover(artifact, to: scratch + "/restored")
            let snapshots = try SelfBackup.snapshots(in: scratch + "/restored")
            guard let newest = snapshots.last else {
                throw BackupError(.notFound, "'\(copy.path)' holds no hub snapshot (no <stamp>/MANIFEST.json).")
            }
            let folder = scratch + "/restored/" + newest
            let manifest: HubSnapshotManifest
            do {
                manifest = try WireJSON.decoder().decode(
                    HubSnapshotManifest.self,
                    from: Data(try FileSystem.readSmallFile(folder + "/" + HubSnapshotManifest.fileName)))
            } catch let error as DecodingError {
                throw BackupError(
                    .invalidArgument,
                    "The manifest of snapshot \(newest) in '\(copy.path)' does not decode: \(WireJSON.describe(error))."
                )
            }
            do { try manifest.check(in: folder) } catch let error as BackupError {
                throw BackupError(
                    error.code, "Snapshot \(newest) in '\(copy.path)' fails its manifest: \(error.message)")
            }
            guard manifest.files.contains(where: { $0.name == "catalog.sqlite" }) else {
                throw BackupError(.notFound, "Snapshot \(newest) in '\(copy.path)' holds no catalog.sqlite.")
            }
            // The site file first (refused before the catalog if it cannot be written), then the catalog.
            let bootstrapText = String(decoding: try FileSystem.readSmallFile(config), as: UTF8.self)
            let snapshotSite =
                manifest.files.contains { $0.name == "site.toml" }
                ? String(decoding: try FileSystem.readSmallFile(folder + "/site.toml", limit: 16 << 20), as: UTF8.self)
                : ""
            try HubRestore.refuseExistingCatalog(at: bootstrap.database)
            let stamp = ArtifactLocation.stamp(for: Date()).replacingOccurrences(of: "/", with: "")
            let aside = "\(config).before-restore-\(stamp)"
            try FileSystem.writeAtomically(Array(bootstrapText.utf8), to: aside)
            try FileSystem.writeAtomically(
                Array(HubRestore.mergeSiteFile(bootstrap: bootstrapText, snapshot: snapshotSite).utf8), to: config)
            // The revocation list too, where this hub has none yet: it only grows, so the
            // snapshot's is never less than the site had then.
            var revocations: String?
            if let path = bootstrap.revocationList, try FileSystem.linkStatus(path) == nil,
                manifest.files.contains(where: { $0.name == "keys/revoked.json" })
            {
                try FileSystem.writeAtomically(try FileSystem.readSmallFile(folder + "/keys/revoked.json"), to: path)
                revocations = path
            }
            let restored = try await HubRestore.restoreCatalog(
                from: folder + "/catalog.sqlite", to: bootstrap.database, actor: me,
                note:
                    "snapshot \(newest) of epoch \(manifest.epoch) in \(copy.path) from \(from), by \(ProcessInfo.processInfo.environment["USER"] ?? "?")",
                now: Date())
            // The restored site file must load as the coordinator will read it.
            do { _ = try CoordinatorConfiguration.load(config) } catch {
                throw BackupError(
                    .configInvalid,
                    "The catalog is restored (epoch \(restored.epoch)), but the restored site file does not load: \(error). Fix '\(config)' (the one before is '\(aside)') before starting the coordinator."
                )
            }
            return Report(
                artifact: copy.path, snapshot: newest, takenAt: manifest.takenAt, database: bootstrap.database,
                artifacts: restored.artifacts, copies: restored.copies, previousEpoch: restored.previousEpoch,
                epoch: restored.epoch, previousSiteFile: aside, revocationList: revocations)
        }

        private func selfBackupSource(_ bootstrap: CoordinatorConfiguration) throws -> (String, String) {
            if let origin, let source { return (origin, source) }
            if let folder = bootstrap.selfBackup?.folder,
                let found = HubRestore.selfBackupSource(bootstrap.site, folder: folder)
            {
                return (origin ?? found.origin, source ?? found.source)
            }
            throw BackupError(
                .invalidArgument,
                "'\(config)' names no folder source at its self_backup folder on a hub node; give --origin and --source."
            )
        }

        private func dataPortURL(_ bootstrap: CoordinatorConfiguration) throws -> String {
            if let dataURL { return dataURL }
            guard let address = bootstrap.site.node(from)?.addresses.first else {
                throw BackupError(
                    .unknownNode, "Node '\(from)' has no address in '\(config)'; give its data port with --data-url.")
            }
            return "https://\(address.contains(":") ? "[\(address)]" : address):\(dataPort)"
        }
    }
}
