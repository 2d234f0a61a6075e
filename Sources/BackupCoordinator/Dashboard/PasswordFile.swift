import BackupCore
import Crypto
import Foundation
import _CryptoExtras

/// The dashboard's logins: one `USER:HASH` per line (`#` comments and blank lines allowed),
/// each hash one of
///
/// - `scrypt$N$r$p$SALT$KEY` (e.g. N 16384, r 8, p 1), or
/// - `pbkdf2-sha256$ROUNDS$SALT$KEY` (at least 210000 rounds, OWASP's floor for SHA-256),
///
/// SALT and KEY in standard base64, KEY 32 bytes — what Python's `hashlib.scrypt` and
/// `hashlib.pbkdf2_hmac('sha256', …)` make. The file must not be readable by group or others.
public struct PasswordFile: Sendable {
    public enum Hash: Sendable, Equatable {
        case scrypt(n: Int, r: Int, p: Int, salt: [UInt8], key: [UInt8])
        case pbkdf2(rounds: Int, salt: [UInt8], key: [UInt8])
    }

    public let path: String
    let users: [String: Hash]

    /// Reads and checks `path`: its mode, and every line, naming the line at fault.
    public static func load(_ path: String) throws -> PasswordFile {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw BackupError(
                .configInvalid, "The password file '\(path)' cannot be read: \(String(cString: strerror(errno))).")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw BackupError(
                .configInvalid,
                "The password file '\(path)' is readable by its group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it."
            )
        }
        let bytes = try FileSystem.readSmallFile(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw BackupError(.configInvalid, "The password file '\(path)' is not UTF-8 text.")
        }
        var users: [String: Hash] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func bad(_ why: String) -> BackupError {
                BackupError(.configInvalid, "\(path):\(number + 1): \(why)")
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw bad("expected USER:HASH")
            }
            let user = String(line[..<colon])
            guard users[user] == nil else { throw bad("user '\(user)' is given twice") }
            do { users[user] = try parse(String(line[line.index(after: colon)...])) } catch let error as BackupError {
                throw bad(error.message)
            }
        }
        guard !users.isEmpty else { throw BackupError(.configInvalid, "The password file '\(path)' names no user.") }
        return PasswordFile(path: path, users: users)
    }

    static func parse(_ text: String) throws -> Hash {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        func bytes(_ s: String, _ what: String) throws -> [UInt8] {
            guard let d = Data(base64Encoded: s), !d.isEmpty else {
                throw BackupError(.configInvalid, "the \(what) is not base64")
            }
            return Array(d)
        }
        switch parts.first {
        case "scrypt":
            guard parts.count == 6, let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]) else {
                throw BackupError(.configInvalid, "expected scrypt$N$r$p$SALT$KEY")
            }
            guard n >= 1024, n <= 1 << 20, n & (n - 1) == 0, (1...32).contains(r), (1...16).contains(p) else {
                throw BackupError(.configInvalid, "scrypt N \(n), r \(r), p \(p): N must be a power of two 1024...2^20")
            }
            return .scrypt(n: n, r: r, p: p, salt: try bytes(parts[4], "salt"), key: try bytes(parts[5], "key"))
        case "pbkdf2-sha256":
            guard parts.count == 4, let rounds = Int(parts[1]) else {
                throw BackupError(.configInvalid, "expected pbkdf2-sha256$ROUNDS$SALT$KEY")
            }
            guard (210_000...10_000_000).contains(rounds) else {
                throw BackupError(.configInvalid, "pbkdf2-sha256 with \(rounds) rounds: use 210000 to 10000000")
            }
            return .pbkdf2(rounds: rounds, salt: try bytes(parts[2], "salt"), key: try bytes(parts[3], "key"))
        default:
            throw BackupError(.configInvalid, "the hash is neither scrypt$… nor pbkdf2-sha256$…")
        }
    }

    /// Whether `password` is `user`'s. Unknown users cost as much as known ones.
    public func verify(user: String, password: String) -> Bool {
        let hash = users[user] ?? users.values.first
        guard let hash else { return false }
        let derived: [UInt8]
        let expected: [UInt8]
        do {
            switch hash {
            case .scrypt(let n, let r, let p, let salt, let key):
                expected = key
                derived = try KDF.Scrypt.deriveKey(
                    from: Array(password.utf8), salt: salt, outputByteCount: key.count, rounds: n, blockSize: r,
                    parallelism: p, maxMemory: 256 << 20
                ).withUnsafeBytes { Array($0) }
            case .pbkdf2(let rounds, let salt, let key):
                expected = key
                derived = try KDF.Insecure.PBKDF2.deriveKey(
                    from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: key.count,
                    rounds: rounds
                ).withUnsafeBytes { Array($0) }
            }
        } catch {
            // A derivation that fails (parameters checked at load) lets nobody in.
            return false
        }
        guard users[user] != nil, derived.count == expected.count else { return false }
        // Constant time: every byte is compared.
        return zip(derived, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// A `scrypt$…` line's hash for `password` with a fresh salt (`scm-backup dashboard
    /// password`).
    public static func scryptHash(_ password: String) throws -> String {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 16384, blockSize: 8, parallelism: 1)
        let keyBytes = key.withUnsafeBytes { Data($0) }
        return "scrypt$16384$8$1$\(Data(salt).base64EncodedString())$\(keyBytes.base64EncodedString())"
    }
}

/// Failed logins per address: past `limit` in a minute, the address is refused until a minute
/// after its last failure. Successful logins are remembered for five minutes (by a digest of
/// user and password), so that a page's requests do not each pay for a key derivation.
public final class LoginThrottle: Sendable {
    struct State {
        var failures: [String: [Date]] = [:]
        var good: [SHA256Digest: Date] = [:]
    }
    private let state = LockedBox(State())
    let limit: Int

    public init(limit: Int) { self.limit = limit }

    /// Whether `address` may try now; otherwise the seconds until it may.
    func retryAfter(_ address: String, now: Date) -> Int? {
        state.withLock { s in
            let recent = (s.failures[address] ?? []).filter { now.timeIntervalSince($0) < 60 }
            s.failures[address] = recent.isEmpty ? nil : recent
            guard recent.count >= limit, let last = recent.last else { return nil }
            return max(1, Int((60 - now.timeIntervalSince(last)).rounded(.up)))
        }
    }

    func failed(_ address: String, now: Date) {
        state.withLock { s in
            s.failures[address, default: []].append(now)
            // Bounded: an address keeps at most its last `limit` failures; at most 10000 addresses.
            if s.failures[address]!.count > limit { s.failures[address]!.removeFirst() }
            if s.failures.count > 10_000 { s.failures.removeAll() }
        }
    }

    func remembered(_ key: SHA256Digest, now: Date) -> Bool {
        state.withLock { s in (s.good[key].map { now < $0 }) ?? false }
    }

    func remember(_ key: SHA256Digest, now: Date) {
        state.withLock { s in
            if s.good.count > 1000 { s.good = s.good.filter { now < $0.value } }
            s.good[key] = now.addingTimeInterval(300)
        }
    }
}
