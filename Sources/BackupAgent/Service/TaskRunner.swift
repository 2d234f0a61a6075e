import BackupCore
import BackupProtocol
import Foundation

/// Runs one task against the agent's store with the BackupCore operations of the local
/// commands. Blocking work runs on its own thread, off the concurrency pool.
struct TaskRunner: Sendable {
    let configuration: AgentConfiguration

    /// Runs `task`; returns a one-line summary, or throws with the reason it failed.
    func run(_ task: TaskInfo) async throws -> String {
        let configuration = configuration
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try TaskRunner.runBlocking(task, configuration) })
            }
        }
    }

    static func runBlocking(_ task: TaskInfo, _ configuration: AgentConfiguration) throws -> String {
        switch task.kind {
        case .backup:
            guard let name = task.source else {
                throw BackupError(.invalidArgument, "Backup task \(task.id) names no source.")
            }
            guard let spec = configuration.sources[name] else {
                throw BackupError(
                    .refused,
                    "Node '\(configuration.node)' has no source '\(name)' configured; it backs up only its own sources."
                )
            }
            let store = try Store.openForWriting(configuration.storePath)
            let published = try store.backup(spec, node: configuration.node)
            return
                "backed up \(name) revision \(published.dna.revision ?? "-") as \(published.location.relativePath) (\(published.dna.size) bytes)"
        case .verify:
            let store = try storeForReading(configuration)
            let results = try store.scan().artifacts.map { store.verify($0) }
            let mutants = results.filter { if case .mutant = $0.status { return true } else { return false } }
            let unverified = results.filter {
                $0.status != .intact && !mutants.map(\.artifact.path).contains($0.artifact.path)
            }
            if !mutants.isEmpty {
                throw BackupError(
                    .archiveCorrupt,
                    "\(mutants.count) mutant(s): \(mutants.map(\.artifact.path).joined(separator: ", "))")
            }
            return
                "verified \(results.count) artifacts: \(results.count - unverified.count) intact, \(unverified.count) could not be verified"
        case .inventory:
            let scan = try storeForReading(configuration).scan()
            let bytes = scan.artifacts.reduce(Int64(0)) { $0 + $1.size }
            return "\(scan.artifacts.count) artifacts, \(bytes) bytes, \(scan.partials.count) partials"
        }
    }

    /// The store for read-only tasks; an unmounted store (no marker) is refused, not read.
    static func storeForReading(_ configuration: AgentConfiguration) throws -> Store {
        let store = Store(root: configuration.storePath)
        guard try store.readMarker() != nil else {
            throw BackupError(
                .storeMarker,
                "Store '\(store.root)' has no marker file: is its disk mounted? The agent refuses to work in it.")
        }
        return store
    }
}
