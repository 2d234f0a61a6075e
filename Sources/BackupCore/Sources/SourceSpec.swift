/// One thing to back up on a server node, and how to reach its tools.
public struct SourceSpec: Sendable, Equatable, Codable {
    public var kind: SourceKind
    /// The source's name in the store.
    public var name: String
    /// The live source: repository, environment, folder or database file.
    public var path: String
    /// The tools the kind uses, with per-source paths and environment.
    public var tools: SourceTools
    /// A step run before the snapshot, e.g. SQL that slims a Trac database; a failure stops
    /// the backup. On an agent only its own `agent.toml` defines steps (the site names one).
    public var preBackup: PreBackupStep?
    /// For `svn`: run `svnadmin verify` on the hotcopy before archiving. The default is false
    /// (it reads the whole repository again).
    public var verifySnapshot: Bool

    public init(
        kind: SourceKind, name: String, path: String, tools: SourceTools = SourceTools(),
        preBackup: PreBackupStep? = nil,
        verifySnapshot: Bool = false
    ) {
        self.kind = kind
        self.name = name
        self.path = path
        self.tools = tools
        self.preBackup = preBackup
        self.verifySnapshot = verifySnapshot
    }
}

/// A command run before a source's snapshot: no shell, its own process group, the given
/// environment only, working folder `/`, killed with its group after `timeoutSeconds`.
public struct PreBackupStep: Sendable, Equatable, Codable {
    /// The step's name (the key of its `[pre_backup.NAME]` table on an agent).
    public var name: String
    /// The program (an absolute path) and its arguments, `{path}` already substituted.
    public var command: [String]
    /// The whole environment the command gets.
    public var environment: [String: String]
    /// How long it may run. The default is 300 seconds.
    public var timeoutSeconds: Double

    public init(name: String, command: [String], environment: [String: String] = [:], timeoutSeconds: Double = 300) {
        self.name = name
        self.command = command
        self.environment = environment
        self.timeoutSeconds = timeoutSeconds
    }

    /// Runs the step; throws `tool-failed` naming the step, its command, the exit status (or
    /// the timeout) and the end of its output.
    @discardableResult
    public func run() throws -> GroupRunOutcome {
        let outcome = try ProcessGroupRunner.run(command, environment: environment, timeout: timeoutSeconds)
        guard outcome.status == 0, !outcome.timedOut else {
            let why =
                outcome.timedOut
                ? "ran past its timeout of \(Int(timeoutSeconds)) s and was killed"
                : "failed with exit status \(outcome.status)"
            throw BackupError(
                .toolFailed,
                "Pre-backup step '\(name)' (\(command.joined(separator: " "))) \(why): \(outcome.tail.isEmpty ? "no output" : outcome.tail)"
            )
        }
        return outcome
    }
}

/// The external tools of the source kinds. Each defaults to its name on `PATH`.
public struct SourceTools: Sendable, Equatable, Codable {
    public var svnadmin = Tool("svnadmin")
    public var svnlook = Tool("svnlook")
    public var git = Tool("git")
    public var tracAdmin = Tool("trac-admin")
    public var sqlite3 = Tool("sqlite3")

    public init() {}

    /// Adds `environment` to every tool (e.g. `LD_LIBRARY_PATH` for a site's own sqlite).
    public mutating func addEnvironment(_ environment: [String: String]) {
        for keyPath in [\SourceTools.svnadmin, \.svnlook, \.git, \.tracAdmin, \.sqlite3]
            as [WritableKeyPath<SourceTools, Tool>]
        {
            self[keyPath: keyPath].environment.merge(environment) { $1 }
        }
    }
}

/// What a snapshot of a live source yielded.
public struct Snapshot: Sendable, Equatable {
    /// The source's own revision (svn revision number, short id of a git snapshot's refs), or
    /// nil where the kind has none and the content digest serves.
    public var revision: String?
    /// An identity that must not change between backups (the svn repository UUID).
    public var identity: String?
}

/// A kind of source: how to snapshot it consistently, check a copy with its own tool, and
/// restore it. Every handler passes the shared conformance suite in the tests.
public protocol SourceHandler: Sendable {
    /// The kind this handler serves.
    var kind: SourceKind { get }
    /// Makes a consistent copy of the live source as the folder `destination` (absent on entry).
    func snapshot(_ spec: SourceSpec, to destination: String) throws -> Snapshot
    /// Checks an extracted copy (the folder a snapshot made) with the kind's own tool.
    func check(_ copy: String, spec: SourceSpec) throws
    /// Turns a checked, extracted copy into a live source at `target` (absent on entry; on the
    /// same file system as `copy`).
    func restore(_ copy: String, to target: String, spec: SourceSpec) throws
}

extension SourceKind {
    /// The handler for this kind.
    public var handler: any SourceHandler {
        switch self {
        case .svn: SubversionSource()
        case .git: GitSource()
        case .trac: TracSource()
        case .sqlite: SQLiteSource()
        case .folder: FolderSource()
        }
    }
}
