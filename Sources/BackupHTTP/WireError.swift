import BackupCore
import BackupProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answered with its status and a JSON body `{"error": {"code", "message"}}`.
public struct WireError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var code: BackupError.Code
    public var message: String
    /// The id under which the server logged an unexpected error.
    public var id: String?

    public init(_ status: HTTPResponse.Status, _ code: BackupError.Code, _ message: String, id: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.id = id
    }

    /// An error answered with the registry's status for `code` (``ErrorCodes``).
    public init(_ code: BackupError.Code, _ message: String) {
        self.init(HTTPResponse.Status(code: ErrorCodes.status(of: code)), code, message)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONResponse.make(
            ErrorResponse(code: code.rawValue, message: message, id: id), status: status)
        // A HEAD answer carries no body: the error travels in a header too (``ErrorResponse/header``).
        let json = try WireJSON.encoder().encode(ErrorResponse(code: code.rawValue, message: message, id: id))
        if let name = HTTPField.Name(ErrorResponse.header) { response.headers[name] = json.base64EncodedString() }
        return response
    }
}

/// JSON responses in the wire's coding.
public enum JSONResponse {
    public static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try WireJSON.encoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension WireError {
    /// Runs `parse` over a request's query parameters: its ``BackupError`` (a value that is not
    /// one, named) becomes a 400 refusal with that code and message.
    public static func badQuery<T>(_ parse: () throws -> T) throws -> T {
        do { return try parse() } catch let error as BackupError {
            throw WireError(.badRequest, error.code, error.message)
        }
    }
}

extension Request {
    /// The limit of a JSON body unless a handler says otherwise: 1 MiB.
    public static let maxJSONBytes = 1 << 20

    /// Decodes a JSON body of at most `limit` bytes: 413 when larger, 400 naming the field when
    /// malformed.
    public func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int = Request.maxJSONBytes) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch {
            throw WireError(.contentTooLarge, .bodyTooLarge, "The request body is larger than \(limit) bytes.")
        }
        do {
            return try WireJSON.decoder().decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw WireError(
                .badRequest, .malformedJSON, "The \(T.self) body is malformed: \(WireJSON.describe(error)).")
        }
    }
}
