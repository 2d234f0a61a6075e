import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation
import GRDB
import Hummingbird

/// What the hub does when SQLite finds the catalog damaged while it runs (a page that fails
/// its checks, a file that is no database any more): it answers 503 `catalog-damaged` naming
/// the file and the remedy instead of an empty 500, and stops — the lease sweeper, woken at
/// once, fails with that error and the service group shuts the process down — so that no
/// lease, result or fencing token is handed out from a catalog that cannot be trusted. At
/// start, the same damage is refused by ``Catalog/init(path:)``.
public final class CatalogDamage: Sendable {
    let path: String
    private let found = LockedBox<BackupError?>(nil)

    init(path: String) { self.path = path }

    /// The error that stops the hub, once damage was seen.
    public var error: BackupError? { found.withLock { $0 } }

    /// Whether `error` is SQLite reporting damage (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
    static func isDamage(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    /// Records `error` when it is damage and returns the hub's error for it; nil otherwise.
    func note(_ error: any Error) -> BackupError? {
        guard Self.isDamage(error) else { return nil }
        return found.withLock { found in
            if let found { return found }
            let stop = BackupError(
                .catalogDamaged,
                "The catalog '\(path)' is damaged (\(error)); the coordinator stops. Restore the catalog from its backup, or rebuild it from the stores ('scm-backup catalog rebuild'), before it starts again."
            )
            found = stop
            return stop
        }
    }
}

/// Turns a damaged-catalog error of any request into 503 `catalog-damaged` and wakes the
/// sweeper to stop the hub. It goes right after the error middleware.
struct CatalogDamageMiddleware<Context: RequestContext>: RouterMiddleware {
    let damage: CatalogDamage
    let signals: TaskSignals

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            guard let stop = damage.note(error) else { throw error }
            context.logger.critical("the catalog is damaged", metadata: ["scm.error": "\(stop.message)"])
            await signals.signal(TaskSignals.sweeper)
            throw WireError(.serviceUnavailable, stop.code, stop.message)
        }
    }
}
