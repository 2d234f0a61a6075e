import BackupCore
import BackupHTTP
import BackupProtocol
import Foundation

/// The dashboard's listener (`[dashboard]` of the hub's file): read-only pages, their JSON and
/// `/metrics`. On a loopback address it is plain HTTP and needs no login (any local user of
/// the hub can read it); on any other address it is TLS with the hub's certificate, and a
/// caller shows either a site certificate of role `operator` or `admin` (never `agent`) or
/// HTTP Basic credentials found in ``passwordFile``. `login = true` asks for TLS and a login on
/// loopback too (a hub whose local users may not read the site).
public struct DashboardSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// `password_file`: lines `USER:HASH` (see ``PasswordFile``); absent, only certificates
    /// let a remote caller in.
    public var passwordFile: String?
    /// Failed logins one address may make per minute before it is refused for a minute
    /// (`login_failures_per_minute`). The default is 5.
    public var loginFailuresPerMinute = 5
    /// `login`: TLS and a certificate or login even on loopback. The default is false.
    public var login = false
    /// The listener's timeouts and caps (the keys of ``ListenerLimits/read(_:idleDefault:)``).
    public var limits = ListenerLimits()

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Whether the address is a loopback one (127.0.0.0/8, ::1, localhost).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Plain HTTP without login: on loopback, unless `login` is set.
    public var isOpen: Bool { isLoopback && !login }

    /// Reads `[dashboard]`: `listen` (required), `password_file`, `login_failures_per_minute`
    /// `login` and the listener limits. A password file that is group- or world-readable, or
    /// one on an open listener (where nobody logs in), is refused.
    public static func read(_ t: ConfigTable, file: ConfigFile) throws -> DashboardSettings {
        let listen = try t.requiredString("listen")
        let (host, port) = try HostPort.parse(listen, key: "listen", table: t)
        var settings = DashboardSettings(host: host, port: port)
        settings.login = try t.bool("login") ?? false
        if let path = try t.string("password_file") {
            let resolved = file.resolve(path)
            do { _ = try PasswordFile.load(resolved) } catch let error as BackupError {
                throw t.error("password_file", error.message)
            }
            guard !settings.isOpen else {
                throw t.error(
                    "password_file",
                    "is set, but the dashboard listens on loopback (\(listen)) without login, where nobody logs in; set login = true to require one"
                )
            }
            settings.passwordFile = resolved
        }
        if let v = try t.int("login_failures_per_minute") {
            guard (1...1000).contains(v) else { throw t.error("login_failures_per_minute", "\(v) is outside 1...1000") }
            settings.loginFailuresPerMinute = v
        }
        settings.limits = try ListenerLimits.read(t)
        try t.finish()
        return settings
    }
}

/// `HOST:PORT` as the `listen` keys spell it (`[::1]:8080` for IPv6).
enum HostPort {
    static func parse(_ listen: String, key: String, table: ConfigTable) throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port), colon != listen.startIndex
        else {
            throw table.error(key, "'\(listen)' is not HOST:PORT (port 0 to 65535)")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}
