import ArgumentParser
import BackupCore
import BackupProtocol
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The documented exit codes of every command.
enum Exit {
    static let failure = ExitCode(1)
    static let partial = ExitCode(3)
    static let mutants = ExitCode(4)
    static let unreachable = ExitCode(10)
}

/// Options every command that prints has.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text (errors too, as {\"error\": {...}}).")
    var json = false
}

/// Prints results and errors in the form the user asked for.
struct Printer {
    var json: Bool

    /// Prints `value` as JSON (sorted keys, ISO 8601 UTC dates).
    func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    /// Prints an error to standard error (or as JSON to standard output with `--json`).
    func report(_ error: any Error) {
        let code: String
        let message: String
        if let e = error as? BackupError {
            code = e.code.rawValue
            message = e.description
        } else {
            code = "internal"
            message = "\(error)"
        }
        if json {
            struct Wrapper: Encodable {
                struct Body: Encodable {
                    var code: String
                    var message: String
                }
                var error: Body
            }
            // Falling back to text if JSON encoding of two strings fails is all one can do.
            if (try? printJSON(Wrapper(error: .init(code: code, message: message)))) != nil { return }
        }
        FileHandle.standardError.write(Data("scm-backup: \(message)\n".utf8))
    }

    /// Runs `body`, turning a thrown error into a printed message and exit code 1.
    func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            report(error)
            throw Exit.failure
        }
    }
}

/// Human-readable sizes: 1.5 KiB, 12.0 MiB (``ByteSize/describe(_:)``).
func formatBytes(_ bytes: Int64) -> String { ByteSize.describe(bytes) }

/// Human-readable ages: 45s, 12m, 5h, 3d.
func formatAge(_ seconds: TimeInterval) -> String {
    let s = Int(seconds.rounded())
    if s < 0 { return "in future" }
    if s < 120 { return "\(s)s" }
    if s < 7200 { return "\(s / 60)m" }
    if s < 172_800 { return "\(s / 3600)h" }
    return "\(s / 86400)d"
}

/// Bytes of "50GiB", "800 MiB", "64KiB", "1000" (no unit: bytes); nil when not a size.
func parseBytes(_ text: String) -> Int64? { ByteSize.parse(text) }
