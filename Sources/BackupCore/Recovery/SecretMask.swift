import Foundation

/// Masks the secret part of credential-looking lines in a unified diff of configuration
/// files, so that a recovery's comparison can be shown without showing passwords: the value of
/// `password = …`, `secret: …`, `token=…` and the like; every `name = value` / `name:value`
/// line of a password file (`passwd`, `users.conf`, `*.htpasswd`); and the hash of an
/// `htpasswd` line (`user:$apr1$…`, `user:{SHA}…`). Headers, hunk lines, comments and section
/// lines are kept. `--show-secrets` shows them unmasked.
public enum SecretMask {
    public static let mask = "********"

    /// `diff` with the secret part of each credential-looking line replaced by ``mask``, and
    /// how many lines were masked. `file` is the name of the file the diff is of.
    public static func apply(toDiff diff: String, file: String) -> (text: String, masked: Int) {
        let passwordFile = isPasswordFile(file)
        var masked = 0
        var out: [Substring] = []
        for line in diff.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let first = line.first, " +-".contains(first), !line.hasPrefix("+++ "), !line.hasPrefix("--- ")
            else {
                out.append(line)
                continue
            }
            if let kept = maskLine(line.dropFirst(), passwordFile: passwordFile) {
                out.append(Substring(String(first) + kept))
                masked += 1
            } else {
                out.append(line)
            }
        }
        return (out.joined(separator: "\n"), masked)
    }

    /// Whether `file` (a path relative to its folder) is a password file: every value in it is a secret.
    static func isPasswordFile(_ file: String) -> Bool {
        let name = (file as NSString).lastPathComponent.lowercased()
        return name == "passwd" || name == "users.conf" || name.hasSuffix(".htpasswd") || name == "htpasswd"
            || name.hasSuffix(".passwd")
    }

    static let secretWords = ["pass", "secret", "token", "credential", "key", "auth"]

    /// The line with its secret part masked, or nil when nothing in it looks like one.
    static func maskLine(_ content: Substring, passwordFile: Bool) -> String? {
        let trimmed = content.drop { $0 == " " || $0 == "\t" }
        guard let head = trimmed.first, head != "#", head != ";", head != "[" else { return nil }
        // name = value, name: value, name=value
        guard let separator = content.firstIndex(where: { $0 == "=" || $0 == ":" }) else { return nil }
        let name = content[..<separator].trimmingCharacters(in: .whitespaces)
        let rest = content[content.index(after: separator)...]
        let value = rest.trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty, !name.isEmpty, !name.contains(" ") || passwordFile else { return nil }
        let lowered = name.lowercased()
        let looksSecret =
            passwordFile || secretWords.contains(where: { lowered.contains($0) })
            || (content[separator] == ":"
                && (value.hasPrefix("$") || value.hasPrefix("{SHA") || value.hasPrefix("{SSHA")))
        guard looksSecret else { return nil }
        let spacing = rest.prefix { $0 == " " || $0 == "\t" }
        return String(content[...separator]) + spacing + mask
    }
}
