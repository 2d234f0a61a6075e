import BackupCore
import Foundation
import TOMLKit

/// A TOML configuration file read strictly: every key must be one the reader asks for, every
/// value of the type and range it expects, and every complaint names the file, the line and
/// the key (`site.toml:12: nodes.alpha.roles: ...`). The coordinator's site file and the
/// agent's file are both read through it.
///
/// TOML parsing is TOMLKit's (toml++); TOMLKit reports lines only for syntax errors, so the
/// lines of keys come from ``KeyLines``, a scan of the text for table headers and `key =`.
public final class ConfigFile {
    /// The file as given (relative paths in it are resolved against its folder).
    public let path: String
    let lines: KeyLines
    let root: TOMLTable

    /// Reads and parses `path`; a syntax error names the file, line and column.
    public init(path: String) throws {
        self.path = path
        let bytes: [UInt8]
        do { bytes = try FileSystem.readSmallFile(path) } catch {
            throw BackupError(.configInvalid, "Cannot read configuration file '\(path)': \(error)", cause: error)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw BackupError(.configInvalid, "\(path): the file is not UTF-8 text.")
        }
        do { root = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw BackupError(
                .configInvalid, "\(path):\(error.source.begin.line):\(error.source.begin.column): \(error.description)")
        }
        lines = KeyLines(text)
    }

    /// The top-level table.
    public var top: ConfigTable { ConfigTable(file: self, keyPath: [], table: root) }

    /// A path from the file, absolute or relative to the file's folder.
    public func resolve(_ value: String) -> String {
        if value.hasPrefix("/") { return value }
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? value : folder + "/" + value
    }

    func error(_ keyPath: [String], _ message: String) -> BackupError {
        let where_ = lines.line(of: keyPath).map { "\(path):\($0)" } ?? path
        let key = keyPath.isEmpty ? "" : " \(ConfigTable.display(keyPath)):"
        return BackupError(.configInvalid, "\(where_):\(key) \(message)")
    }
}

/// One table of a ``ConfigFile``: typed getters that remember which keys were read, and
/// ``finish()`` that refuses the rest as unknown.
public final class ConfigTable {
    let file: ConfigFile
    /// Components from the top; an element of an array of tables is `"#<index>"`.
    let keyPath: [String]
    let table: TOMLTable
    private var read: Set<String> = []

    init(file: ConfigFile, keyPath: [String], table: TOMLTable) {
        self.file = file
        self.keyPath = keyPath
        self.table = table
    }

    /// The keys of this table, sorted.
    public var keys: [String] { table.keys.sorted() }

    /// An error about `key` of this table (or the table itself), with file and line.
    public func error(_ key: String?, _ message: String) -> BackupError {
        file.error(key.map { keyPath + [$0] } ?? keyPath, message)
    }

    /// The table's own name in messages, e.g. `nodes.alpha`.
    public var name: String { Self.display(keyPath) }

    private func value(_ key: String) -> TOMLValueConvertible? {
        read.insert(key)
        return table[key]
    }

    private func typed<T>(_ key: String, _ what: String, _ convert: (TOMLValueConvertible) -> T?) throws -> T? {
        guard let raw = value(key) else { return nil }
        guard let v = convert(raw) else { throw error(key, "expected \(what), found \(raw.type)") }
        return v
    }

    public func string(_ key: String) throws -> String? { try typed(key, "a string") { $0.string } }
    public func bool(_ key: String) throws -> Bool? { try typed(key, "true or false") { $0.bool } }
    public func int(_ key: String) throws -> Int? { try typed(key, "an integer") { $0.int } }
    /// A number; integers are accepted where a fraction is allowed.
    public func double(_ key: String) throws -> Double? {
        try typed(key, "a number") { $0.double ?? $0.int.map(Double.init) }
    }

    /// One of a closed set of values spelled as their raw value (`log_level = "debug"`); the
    /// error lists the set.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String) throws -> T? where T.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let value = T(rawValue: text) else {
            throw error(key, "'\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    public func requiredString(_ key: String) throws -> String {
        guard let v = try string(key) else { throw error(nil, "missing key '\(key)'") }
        guard !v.isEmpty else { throw error(key, "must not be empty") }
        return v
    }

    /// A required path to an existing file, resolved against the configuration file's folder.
    public func requiredFile(_ key: String) throws -> String {
        let path = file.resolve(try requiredString(key))
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw error(key, "'\(path)' does not exist or cannot be read")
        }
        return path
    }

    /// Whether `key` holds an array (read or not), for refusing a form the file no longer takes.
    public func isArray(_ key: String) -> Bool { table[key]?.array != nil }

    /// An array of strings.
    public func strings(_ key: String) throws -> [String]? {
        guard let array = try typed(key, "an array of strings", { $0.array }) else { return nil }
        return try array.enumerated().map { i, element in
            guard let s = element.string else {
                throw error(key, "element \(i + 1) should be a string, found \(element.type)")
            }
            return s
        }
    }

    /// A table of string values, e.g. `env = { LD_LIBRARY_PATH = "/opt/lib" }`.
    public func stringMap(_ key: String) throws -> [String: String]? {
        guard let sub = try table(key) else { return nil }
        var map: [String: String] = [:]
        for k in sub.keys { map[k] = try sub.string(k) }
        return map
    }

    /// A sub-table.
    public func table(_ key: String) throws -> ConfigTable? {
        guard let t = try typed(key, "a table", { $0.table }) else { return nil }
        return ConfigTable(file: file, keyPath: keyPath + [key], table: t)
    }

    /// An array of tables (`[[key]]`).
    public func tables(_ key: String) throws -> [ConfigTable] {
        guard let array = try typed(key, "an array of tables ([[\(key)]])", { $0.array }) else { return [] }
        return try array.enumerated().map { i, element in
            guard let t = element.table else {
                throw error(key, "element \(i + 1) should be a table, found \(element.type)")
            }
            return ConfigTable(file: file, keyPath: keyPath + [key, "#\(i)"], table: t)
        }
    }

    /// Refuses every key that no getter asked for, naming the first with its line.
    public func finish() throws {
        let unknown = table.keys.filter { !read.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        let known = read.sorted().joined(separator: ", ")
        throw error(first, "unknown key" + (known.isEmpty ? "" : " (this table knows: \(known))"))
    }

    static func display(_ keyPath: [String]) -> String {
        var out = ""
        for component in keyPath {
            if component.hasPrefix("#") {
                out += "[\(Int(component.dropFirst())! + 1)]"
            } else {
                let bare = component.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                out += (out.isEmpty ? "" : ".") + (bare ? component : "\"\(component)\"")
            }
        }
        return out
    }
}

/// The line of each key and table header of a TOML text, found by scanning it: headers
/// (`[a.b]`, `[[a]]`, counting the elements of arrays of tables) and `key =` / `a.b =` lines.
/// Keys inside inline tables are not found; their enclosing key's line stands for them.
struct KeyLines {
    private var lines: [[String]: Int] = [:]

    init(_ text: String) {
        var header: [String] = []
        var arrayCounts: [[String]: Int] = [:]
        var inMultilineString = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            let quotes =
                line.components(separatedBy: "\"\"\"").count - 1 + line.components(separatedBy: "'''").count - 1
            if inMultilineString {
                if quotes % 2 == 1 { inMultilineString = false }
                continue
            }
            if line.hasPrefix("[[") {
                let name = Self.splitKey(String(line.dropFirst(2).prefix { $0 != "]" }))
                let i = arrayCounts[name, default: 0]
                arrayCounts[name] = i + 1
                header = name + ["#\(i)"]
                lines[name] = lines[name] ?? number
                lines[header] = number
            } else if line.hasPrefix("[") {
                header = Self.splitKey(String(line.dropFirst().prefix { $0 != "]" }))
                for n in header.indices {
                    let prefix = Array(header.prefix(n + 1))
                    lines[prefix] = lines[prefix] ?? number
                }
            } else if !line.hasPrefix("#"), let eq = Self.assignment(line) {
                let key = header + Self.splitKey(String(line[..<eq]))
                lines[key] = lines[key] ?? number
                if quotes % 2 == 1 { inMultilineString = true }
            }
        }
    }

    /// The line of `keyPath`, or of its nearest enclosing key or header.
    func line(of keyPath: [String]) -> Int? {
        var path = keyPath
        while !path.isEmpty {
            if let n = lines[path] { return n }
            path.removeLast()
        }
        return nil
    }

    /// The index of the `=` of a `key = value` line, outside quoted key parts.
    private static func assignment(_ line: String) -> String.Index? {
        var quote: Character?
        for i in line.indices {
            let c = line[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "=" {
                return i
            }
        }
        return nil
    }

    /// `a."b.c" . d` → `["a", "b.c", "d"]`.
    static func splitKey(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "." {
                parts.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current.trimmingCharacters(in: .whitespaces))
        return parts
    }
}
