import Foundation

/// What a receiving store remembers of the coordinator's tickets and orders, so that a
/// replayed one is refused across restarts: per catalog epoch and task, the highest fencing
/// token seen, the latest expiry of its tickets and orders, and the ids spent with their expiry.
/// Everything of a task is forgotten ``keepAfterExpiry`` after the latest expiry seen of it,
/// when each of its tickets would be refused as expired anyway (tickets of an older lease are
/// issued earlier with the same lifetime, so they expire no later), so the ledger holds only
/// the tasks of the last few lease periods however long the store lives.
///
/// File `<store>/.scm-backup-ledger` (format `scm-backup-ledger/1`, JSON, see
/// `Protocol/store.md`), written atomically and fsynced before the work it records is
/// published or acknowledged. It is made with the store's marker; a store whose ledger is
/// missing or unreadable accepts no transfer and no purge (it fails closed) until
/// `scm-backup init-store` makes a new one.
public struct TicketLedger: Codable, Equatable, Sendable {
    public static let fileName = ".scm-backup-ledger"
    public static let currentFormat = "scm-backup-ledger/1"
    /// How long after its expiry a spent id is kept.
    public static let keepAfterExpiry: TimeInterval = 600

    public struct Task: Codable, Equatable, Sendable {
        public var highestToken: UInt64
        /// Spent ids and when each expires.
        public var spent: [String: Date]
        /// The latest expiry of a ticket or order seen of the task (absent in ledgers written
        /// before it was kept, where the spent ids' expiries stand for it).
        public var expiresAt: Date?
        /// The store-relative artifact paths its tickets named: a received partial of one of
        /// them is kept for resumption while the task is remembered.
        public var paths: [String]?

        public init(highestToken: UInt64, spent: [String: Date], expiresAt: Date?, paths: [String]? = nil) {
            self.highestToken = highestToken
            self.spent = spent
            self.expiresAt = expiresAt
            self.paths = paths
        }

        /// When everything of the task may be forgotten, or nil when nothing says.
        var forgettableAt: Date? {
            let latest = ([expiresAt].compactMap { $0 } + spent.values).max()
            return latest?.addingTimeInterval(TicketLedger.keepAfterExpiry)
        }
    }

    public var format: String
    /// `<epoch>/<task id>` → what was seen of that task.
    public var tasks: [String: Task]

    public init() {
        format = Self.currentFormat
        tasks = [:]
    }

    /// Why `id` (of `epoch`, `task`, `token`) may not be used now, or nil when it may.
    public func refusal(epoch: String, task: Int64, token: UInt64, id: String) -> LedgerRefusal? {
        guard let seen = tasks["\(epoch)/\(task)"] else { return nil }
        if seen.spent[id] != nil {
            return LedgerRefusal(
                code: .ticketUsed, reason: "it was used for a completed transfer or purge; it is spent")
        }
        if token < seen.highestToken {
            return LedgerRefusal(
                code: .ticketStale,
                reason: "its lease (token \(token)) is older than one already seen (token \(seen.highestToken))")
        }
        return nil
    }

    /// Notes that `token` of the task was seen with a ticket or order expiring at `expiresAt`,
    /// and `id` spent when given, and `path` as the artifact its ticket brings; forgets every task whose tickets have all long expired (an
    /// entry that says nothing of its expiry, from an older ledger, is forgotten too: any
    /// ticket it could refuse was issued before this version ran and has expired since).
    public mutating func note(
        epoch: String, task: Int64, token: UInt64, spent id: String?, expiresAt: Date, path: String? = nil, now: Date
    ) {
        tasks = tasks.filter { _, entry in entry.forgettableAt.map { now < $0 } ?? false }
        let key = "\(epoch)/\(task)"
        var entry = tasks[key] ?? Task(highestToken: 0, spent: [:], expiresAt: nil)
        entry.highestToken = max(entry.highestToken, token)
        entry.expiresAt = max(entry.expiresAt ?? expiresAt, expiresAt)
        if let id { entry.spent[id] = expiresAt }
        if let path, !(entry.paths ?? []).contains(path) { entry.paths = (entry.paths ?? []) + [path] }
        tasks[key] = entry
    }

    /// The artifact paths of the tasks remembered: their received partials may still resume.
    public var pathsInUse: Set<String> { Set(tasks.values.flatMap { $0.paths ?? [] }) }
}

/// Why the ledger refuses a ticket or order; `code` is the wire code.
public struct LedgerRefusal: Error, Sendable, Equatable {
    public var code: BackupError.Code
    public var reason: String
}

extension Store {
    /// The ledger file's path.
    public var ledgerPath: String { root + "/" + TicketLedger.fileName }

    /// Reads the ledger; a missing or unreadable one is an error (the store fails closed).
    public func readLedger() throws -> TicketLedger {
        guard try FileSystem.linkStatus(ledgerPath) != nil else {
            throw BackupError(
                .storeMarker,
                "Store '\(root)' has no ticket ledger (\(TicketLedger.fileName)), so it cannot tell a replayed ticket from a new one and refuses transfers and purges. If this is the right disk, make one with 'scm-backup init-store --store \(root)'."
            )
        }
        let bytes = try FileSystem.readSmallFile(ledgerPath)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let ledger: TicketLedger
        do { ledger = try decoder.decode(TicketLedger.self, from: Data(bytes)) } catch {
            throw BackupError(
                .storeMarker,
                "The ticket ledger '\(ledgerPath)' cannot be read (\(error)); the store refuses transfers and purges until 'scm-backup init-store --store \(root)' makes a new one."
            )
        }
        guard ledger.format == TicketLedger.currentFormat else {
            throw BackupError(
                .storeMarker,
                "The ticket ledger '\(ledgerPath)' has format '\(ledger.format)', which this version does not read.")
        }
        return ledger
    }

    /// Writes the ledger atomically and fsynced.
    public func writeLedger(_ ledger: TicketLedger) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try FileSystem.writeAtomically(Array(try encoder.encode(ledger)) + [0x0A], to: ledgerPath, mode: 0o600)
    }

    /// Reads the ledger, lets `body` check and change it, and writes it back (fsynced) before
    /// returning; one change at a time in this process (the data port and tasks share it).
    public func updateLedger<T>(_ body: (inout TicketLedger) throws -> T) throws -> T {
        Store.ledgerLock.lock()
        defer { Store.ledgerLock.unlock() }
        var ledger = try readLedger()
        let result = try body(&ledger)
        try writeLedger(ledger)
        return result
    }

    private static let ledgerLock = NSLock()

    /// Makes an empty ledger unless a readable one exists (for a new or adopted store): one
    /// that is missing or whose content cannot be used is replaced; an I/O error is thrown,
    /// so a ledger that merely could not be read now is never thrown away.
    public func ensureLedger() throws {
        do {
            _ = try readLedger()
            return
        } catch let error as BackupError where error.code == .storeMarker {
            try writeLedger(TicketLedger())
        }
    }
}
