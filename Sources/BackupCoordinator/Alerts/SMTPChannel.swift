import BackupCore
import BackupProtocol
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// `[alerts.smtp]`: mail submission to a relay. `server = "host:port"`; `starttls = true` (the
/// default: EHLO, STARTTLS, EHLO again) or `tls = true` (implicit TLS, port 465); the server's
/// certificate and name checked against the system trust store (or `ca_file`, a private CA's
/// PEM);
/// `username` with a `password_file` (mode 0600) for AUTH PLAIN or LOGIN, which is refused
/// without TLS. `from` and `to` default to `[alerts]`'s.
public struct SMTPSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var startTLS = true
    public var implicitTLS = false
    public var username: String?
    public var passwordFile: String?
    public var caFile: String?
    public var from: String?
    public var to: [String]?

    static func read(_ s: ConfigTable) throws -> SMTPSettings {
        let server = try s.requiredString("server")
        let (host, port) = try HostPort.parse(server, key: "server", table: s)
        var settings = SMTPSettings(host: host, port: port)
        settings.implicitTLS = try s.bool("tls") ?? false
        settings.startTLS = try s.bool("starttls") ?? !settings.implicitTLS
        if settings.implicitTLS && settings.startTLS {
            throw s.error("starttls", "tls = true is implicit TLS; starttls upgrades a plain connection: set one")
        }
        settings.username = try s.string("username")
        settings.passwordFile = try s.string("password_file")
        if let path = settings.passwordFile, !path.hasPrefix("/") {
            throw s.error("password_file", "give the absolute path of the file holding the password (mode 0600)")
        }
        if settings.username != nil, settings.passwordFile == nil {
            throw s.error("username", "is set without password_file (the password comes only from a 0600 file)")
        }
        if settings.passwordFile != nil, settings.username == nil {
            throw s.error("password_file", "is set without username")
        }
        if settings.username != nil, !settings.startTLS, !settings.implicitTLS {
            throw s.error("username", "AUTH without TLS would send the password in clear: set starttls or tls")
        }
        if let path = settings.passwordFile {
            do { _ = try SMTPChannel.password(path) } catch let error as BackupError {
                throw s.error("password_file", error.message)
            }
        }
        if let path = try s.string("ca_file") {
            guard path.hasPrefix("/") else { throw s.error("ca_file", "give the absolute path of the CA's PEM file") }
            do { _ = try NIOSSLCertificate.fromPEMFile(path) } catch {
                throw s.error("ca_file", "'\(path)' holds no PEM certificate: \(error)")
            }
            settings.caFile = path
        }
        if let from = try s.string("from") {
            guard MailMessage.isAddress(from) else {
                throw s.error("from", "'\(AuditText.escape(from))' is not a mail address")
            }
            settings.from = from
        }
        if let to = try s.strings("to") {
            for address in to where !MailMessage.isAddress(address) {
                throw s.error("to", "'\(AuditText.escape(address, limit: 100))' is not a mail address")
            }
            settings.to = to
        }
        try s.finish()
        return settings
    }
}

/// The SMTP client: one connection per mail, 30 s for each step (connect, handshake, every
/// reply), replies of at most 100 lines of 1000 bytes. Returns the failure, naming the step and
/// the server's answer, or nil.
enum SMTPChannel {
    static let stepSeconds: Int64 = 30

    struct Reply: Sendable {
        var code: Int
        var text: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The password from its file: refused when the group or others may read it.
    static func password(_ path: String) throws -> String {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw BackupError(.configInvalid, "'\(path)' cannot be read: \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw BackupError(
                .configInvalid,
                "'\(path)' is readable by its group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it"
            )
        }
        let text = String(decoding: try FileSystem.readSmallFile(path), as: UTF8.self)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    static func send(_ mail: MailMessage, settings: SMTPSettings, now: Date) async -> String? {
        do {
            try await deliver(mail, settings: settings, now: now)
            return nil
        } catch {
            return "smtp \(settings.host):\(settings.port): \(error)"
        }
    }

    static func deliver(_ mail: MailMessage, settings: SMTPSettings, now: Date) async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let ca = settings.caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) }
        let context = try NIOSSLContext(configuration: tls)
        let host = settings.host
        let implicit = settings.implicitTLS
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(stepSeconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicit {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHandler(SMTPReplies())
                }
            }
            .connect(host: settings.host, port: settings.port).get()
        do {
            try await dialog(channel, mail: mail, settings: settings, context: context, now: now)
        } catch {
            channel.close(promise: nil)
            throw error
        }
        channel.close(promise: nil)
    }

    static func dialog(
        _ channel: any Channel, mail: MailMessage, settings: SMTPSettings, context: NIOSSLContext, now: Date
    ) async throws {
        func expect(_ step: String, _ codes: ClosedRange<Int>) async throws -> Reply {
            let reply = try await next(channel, step: step)
            guard codes.contains(reply.code) else {
                throw Failure(
                    description:
                        "\(step): the server answered \(reply.code) \(AuditText.escape(reply.text, limit: 300))")
            }
            return reply
        }
        func say(_ line: String, _ step: String, _ codes: ClosedRange<Int>) async throws -> Reply {
            try await channel.writeAndFlush(ByteBuffer(string: line + "\r\n")).get()
            return try await expect(step, codes)
        }
        let name = "scm-backup.invalid"
        _ = try await expect("greeting", 220...220)
        var capabilities = try await say("EHLO \(name)", "EHLO", 250...250).text.uppercased()
        if settings.startTLS {
            guard capabilities.split(separator: "\n").contains(where: { $0.dropFirst(4).hasPrefix("STARTTLS") }) else {
                throw Failure(description: "STARTTLS: the server does not offer it (starttls = true)")
            }
            _ = try await say("STARTTLS", "STARTTLS", 220...220)
            let host = settings.host
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(
                    try NIOSSLClientHandler(context: context, serverHostname: host), position: .first)
            }.get()
            capabilities = try await say("EHLO \(name)", "EHLO after STARTTLS", 250...250).text.uppercased()
        }
        if let user = settings.username, let file = settings.passwordFile {
            let password = try password(file)
            let auth = capabilities.split(separator: "\n").first { $0.dropFirst(4).hasPrefix("AUTH") } ?? ""
            if auth.contains("PLAIN") {
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                _ = try await say("AUTH PLAIN \(token)", "AUTH PLAIN", 235...235)
            } else if auth.contains("LOGIN") {
                _ = try await say("AUTH LOGIN", "AUTH LOGIN", 334...334)
                _ = try await say(Data(user.utf8).base64EncodedString(), "AUTH LOGIN user", 334...334)
                _ = try await say(Data(password.utf8).base64EncodedString(), "AUTH LOGIN password", 235...235)
            } else {
                throw Failure(description: "AUTH: the server offers neither PLAIN nor LOGIN")
            }
        }
        _ = try await say("MAIL FROM:<\(mail.from)>", "MAIL FROM", 250...250)
        for to in mail.to { _ = try await say("RCPT TO:<\(to)>", "RCPT TO \(to)", 250...251) }
        _ = try await say("DATA", "DATA", 354...354)
        // CRLF line ends; a line starting with a dot gets another (RFC 5321 4.5.2).
        let lines = mail.render(date: now).split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasPrefix(".") ? "." + $0 : String($0)
        }
        _ = try await say(lines.joined(separator: "\r\n") + "\r\n.", "the message", 250...250)
        try await channel.writeAndFlush(ByteBuffer(string: "QUIT\r\n")).get()
        // The answer to QUIT does not matter: the message was accepted.
        _ = try? await next(channel, step: "QUIT")
    }

    /// The server's next reply, within the step's 30 s.
    static func next(_ channel: any Channel, step: String) async throws -> Reply {
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Reply> in
            do {
                let handler = try channel.pipeline.syncOperations.handler(type: SMTPReplies.self)
                return handler.next(on: channel.eventLoop, step: step, seconds: stepSeconds)
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }
}

/// Collects the server's replies (`NNN-…` continuation lines, then `NNN …`) for ``SMTPChannel``.
final class SMTPReplies: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private var pending: [UInt8] = []
    private var lines: [String] = []
    private var replies: [SMTPChannel.Reply] = []
    private var waiter: EventLoopPromise<SMTPChannel.Reply>?
    private var timeout: Scheduled<Void>?
    private var failure: (any Error)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytesView
        while let end = pending.firstIndex(of: 10) {
            var line = Array(pending[..<end])
            pending.removeSubrange(...end)
            if line.last == 13 { line.removeLast() }
            let text = String(decoding: line, as: UTF8.self)
            lines.append(text)
            guard lines.count <= 100, line.count <= 1000 else {
                fail(SMTPChannel.Failure(description: "the server's reply is over 100 lines of 1000 bytes"))
                context.close(promise: nil)
                return
            }
            // The last line of a reply: three digits, then a space or nothing.
            if line.count >= 3, line.count == 3 || line[3] == 32,
                let code = Int(String(decoding: line[..<3], as: UTF8.self))
            {
                deliver(SMTPChannel.Reply(code: code, text: lines.joined(separator: "\n")))
                lines = []
            }
        }
        if pending.count > 1000 {
            fail(SMTPChannel.Failure(description: "the server sent a line of over 1000 bytes"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPChannel.Failure(description: "the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func next(on loop: any EventLoop, step: String, seconds: Int64) -> EventLoopFuture<SMTPChannel.Reply> {
        if !replies.isEmpty { return loop.makeSucceededFuture(replies.removeFirst()) }
        if let failure { return loop.makeFailedFuture(failure) }
        let promise = loop.makePromise(of: SMTPChannel.Reply.self)
        waiter = promise
        let bound = NIOLoopBound(self, eventLoop: loop)
        timeout = loop.scheduleTask(in: .seconds(seconds)) {
            bound.value.fail(SMTPChannel.Failure(description: "\(step): no answer within \(seconds) s"))
        }
        return promise.futureResult
    }

    private func deliver(_ reply: SMTPChannel.Reply) {
        timeout?.cancel()
        if let waiter {
            self.waiter = nil
            waiter.succeed(reply)
        } else {
            replies.append(reply)
        }
    }

    /// Fails the step waiting (once: the waiter is dropped), and every later one.
    func fail(_ error: any Error) {
        timeout?.cancel()
        if failure == nil { failure = error }
        waiter?.fail(error)
        waiter = nil
    }
}
