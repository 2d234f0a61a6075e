import BackupCore
import Foundation

/// A plain-text UTF-8 mail as a sendmail-compatible command reads it (`-t`: recipients from
/// the headers). Header values are stripped of CR, LF and other controls and RFC 2047-encoded
/// when they are not ASCII, so no name a source, node or repository supplies can add a header;
/// the body keeps only newlines and tabs of the control characters.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String

    public init(from: String, to: [String], subject: String, body: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
    }

    /// `local@domain` without spaces, controls or angle brackets.
    public static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && text.count <= 254
            && text.unicodeScalars.allSatisfy {
                $0.isASCII && $0.value > 32 && $0.value < 127 && !"<>()[],;:\\\"".unicodeScalars.contains($0)
            }
    }

    /// A header value: controls gone, encoded-word (`=?UTF-8?B?…?=`) when not ASCII.
    public static func headerValue(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }))
        guard !clean.unicodeScalars.allSatisfy(\.isASCII) else { return clean }
        return "=?UTF-8?B?\(Data(clean.utf8).base64EncodedString())?="
    }

    /// The body with controls other than newline and tab removed.
    static func cleanBody(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.filter { $0 == "\n" || $0 == "\t" || ($0.value >= 32 && $0.value != 127) }))
    }

    /// The message as sendmail reads it.
    public func render(date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return """
            From: \(Self.headerValue(from))
            To: \(to.map(Self.headerValue).joined(separator: ", "))
            Subject: \(Self.headerValue(subject))
            Date: \(formatter.string(from: date))
            MIME-Version: 1.0
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit
            Auto-Submitted: auto-generated

            \(Self.cleanBody(body))

            """
    }
}
