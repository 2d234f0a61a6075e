import BackupCoordinator
import BackupCore
import BackupHTTP
import BackupProtocol
import BackupTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The error contract: one registry of codes, each documented, the retry table beside it, and
/// every error a server meets leaving as JSON (an unexpected one logged at `error`).
@Suite(.timeLimit(.minutes(2)))
struct ErrorContractTests {
    static var protocolText: String {
        get throws {
            let folder = Paths.packageRoot + "/Protocol"
            return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".md") }.sorted()
                .map { try String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
        }
    }

    @Test func everyRegisteredCodeIsDocumentedInProtocolAndRegisteredOnce() throws {
        let text = try Self.protocolText
        let undocumented = ErrorCodes.all.map(\.code.rawValue).filter { !text.contains("`\($0)`") }
        #expect(undocumented.isEmpty, "codes missing from Protocol/*.md: \(undocumented)")
        let codes = ErrorCodes.all.map(\.code)
        #expect(Set(codes).count == codes.count, "a code is registered twice")
        for refusal in [
            TaskLifecycle.Refusal.notLeasable, .staleToken, .notHolder, .expired, .noProgress, .finished,
            .tokenNotIncreasing, .alreadyApplied,
        ] {
            #expect(ErrorCodes.isRegistered(refusal.code), "\(refusal.code)")
        }
    }

    @Test func everyCodeOfTheRetryTableIsRegisteredAndInTheLifecycleDocument() throws {
        let lifecycle = try String(
            contentsOfFile: Paths.packageRoot + "/Protocol/task-lifecycle.md", encoding: .utf8)
        for (code, rule) in RetryPolicy.table {
            #expect(ErrorCodes.isRegistered(code), "\(code)")
            let row = lifecycle.split(separator: "\n").first { $0.hasPrefix("|") && $0.contains("`\(code)`") }
            #expect(row != nil, "\(code) has no row in task-lifecycle.md")
            if let row {
                #expect(row.contains(rule.retryable ? "| yes |" : "| no |"), "\(code): \(row)")
                #expect(row.contains("| \(rule.maxAttempts) |"), "\(code): \(row)")
            }
        }
        #expect(RetryPolicy.rule(for: "never-heard-of") == .permanent)
    }

    /// Product code names registered constants, never a code spelled inline.
    @Test func noSourceFileSpellsAWireCodeInline() throws {
        let root = Paths.packageRoot + "/Sources"
        let pattern = try Regex(#"WireError\(\s*\.[a-zA-Z]+,\s*"|code:\s*"[a-z]"#)
        var offenders: [String] = []
        for file in FileManager.default.enumerator(atPath: root)!.compactMap({ $0 as? String })
        where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
            if text.contains(pattern) { offenders.append(file) }
        }
        #expect(offenders.isEmpty, "\(offenders)")
    }

    // MARK: The middleware, on Hummingbird's in-process router (no socket)

    struct Boom: Error, CustomStringConvertible {
        var description: String { "the frobnicator broke" }
    }

    static func application(revealsInternals: Bool, logs: LogCapture) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: ErrorMiddleware<BasicRequestContext>(revealsInternals: revealsInternals))
        router.get("/boom") { _, _ -> Response in throw Boom() }
        router.get("/full") { _, _ -> Response in
            throw BackupError(.diskFull, "Cannot write '/srv/store/x': the file system is full.")
        }
        router.get("/refused") { _, _ -> Response in throw WireError(.wrongRole, "no") }
        router.get("/number/:n") { _, context -> String in
            "\(try context.parameters.require("n", as: Int.self))"
        }
        return Application(router: router, logger: logs.logger)
    }

    static func decode(_ body: ByteBuffer) throws -> ErrorResponse {
        try WireJSON.decoder().decode(ErrorResponse.self, from: Data(buffer: body))
    }

    @Test func anUnexpectedErrorComesBackAsJSONNamingItAndIsLoggedAtError() async throws {
        let logs = LogCapture()
        try await Self.application(revealsInternals: true, logs: logs).test(.router) { client in
            try await client.execute(uri: "/boom", method: .get) { response in
                #expect(response.status == .internalServerError)
                let error = try Self.decode(response.body)
                #expect(error.error.code == "internal")
                #expect(error.error.message.contains("the frobnicator broke"))
                let id = try #require(error.error.id)
                let line = try #require(logs.lines.first { $0.message == "request failed" })
                #expect(line.level == .error)
                #expect(line.metadata["scm.error-id"] == id)
                #expect(line.metadata["hb.request.id"] != nil, "the request's logger, with its id")
            }
            try await client.execute(uri: "/full", method: .get) { response in
                #expect(response.status.code == 507)
                let error = try Self.decode(response.body)
                #expect(error.error.code == "disk-full")
                #expect(error.error.message.contains("/srv/store/x"))
            }
            try await client.execute(uri: "/number/seven", method: .get) { response in
                #expect(response.status == .badRequest)
                let code = try Self.decode(response.body).error.code
                #expect(code == "invalid-argument")
            }
            let before = logs.lines.count
            try await client.execute(uri: "/refused", method: .get) { response in
                #expect(response.status == .forbidden)
                let code = try Self.decode(response.body).error.code
                #expect(code == "wrong-role")
            }
            #expect(logs.lines.count == before, "a refusal is not an error")
        }
    }

    @Test func aListenerWithoutClientAuthenticationSaysOnlySeeLog() async throws {
        let logs = LogCapture()
        try await Self.application(revealsInternals: false, logs: logs).test(.router) { client in
            try await client.execute(uri: "/boom", method: .get) { response in
                #expect(response.status == .internalServerError)
                let error = try Self.decode(response.body)
                #expect(error.error.code == "internal")
                #expect(error.error.message == "see log")
                #expect(!String(buffer: response.body).contains("frobnicator"))
                let id = try #require(error.error.id)
                #expect(
                    logs.lines.contains {
                        $0.metadata["scm.error-id"] == id && $0.metadata["scm.error"]?.contains("frobnicator") == true
                    })
            }
        }
    }
}
