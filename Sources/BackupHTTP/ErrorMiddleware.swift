import BackupCore
import BackupProtocol
import Foundation
import Hummingbird
import Logging

/// Answers every error a handler or middleware throws as `{"error": {"code", "message"}}`,
/// never Hummingbird's empty-bodied 500:
///
/// - a ``WireError`` (a refusal) is answered as it is and logged by the ``RefusalLog``;
/// - a `BackupError` with the registry's status for its code (``ErrorCodes``);
/// - Hummingbird's own errors (a bad route parameter, a body over the limit) with the closest
///   registered code;
/// - anything else as 500 `internal`, with a message naming the error where the listener
///   authenticates its clients, and only "see log" and an id where it does not.
///
/// Every error that is not a refusal is logged at `error` with the request's logger (so with
/// its `hb.request.id`). It goes first in a router's middleware, so that it sees all the others.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whether an unexpected error's description may reach the client: true on a listener
    /// whose clients all hold site certificates, false on one without client authentication.
    let revealsInternals: Bool

    public init(revealsInternals: Bool) {
        self.revealsInternals = revealsInternals
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as WireError {
            throw error
        } catch {
            let wire = answer(for: error, request: request, logger: context.logger)
            return try wire.response(from: request, context: context)
        }
    }

    /// The refusal answering `error`, logged (for middleware that answers in its own format).
    public func answer(for error: any Error, request: Request, logger: Logger) -> WireError {
        let id = UUID().uuidString.lowercased().prefix(8)
        var metadata: Logger.Metadata = [
            "scm.request": "\(request.method) \(AuditText.escape(request.uri.path, limit: 200))",
            "scm.error": "\(error)", "scm.error-id": "\(id)",
        ]
        let wire: WireError
        switch error {
        case let error as BackupError:
            metadata["scm.code"] = "\(error.code)"
            wire = WireError(error.code, error.message)
        case let error as HTTPError:
            let code: BackupError.Code =
                switch error.status.code {
                case 404: .unknownEndpoint
                case 413: .bodyTooLarge
                case 400..<500: .invalidArgument
                default: .internal
                }
            wire = WireError(
                error.status, code, error.body ?? "\(request.method) \(request.uri.path): \(error.status).")
        default:
            let message =
                revealsInternals
                ? "\(request.method) \(request.uri.path) failed unexpectedly: \(error)."
                : "see log"
            wire = WireError(.internalServerError, .internal, message, id: String(id))
        }
        logger.error("request failed", metadata: metadata)
        return wire
    }
}
