import BackupTesting
import Foundation
import Testing

/// The help of every command is a contract: a renamed flag or changed text shows up here.
/// After a deliberate change, run with SCM_BACKUP_RECORD_SNAPSHOTS=1 and review the diff.
struct HelpSnapshotTests {
    static let commands: [[String]] = [
        [], ["backup"], ["verify"], ["ls"], ["du"], ["lastlinks"], ["init-store"], ["archive"],
        ["archive", "list"], ["archive", "check"], ["archive", "extract"], ["demo"], ["purge"], ["purge", "pause"],
        ["purge", "resume"], ["purge", "release"], ["trash"], ["recover"],
        ["recover-config"], ["pki"], ["pki", "init"], ["pki", "issue"], ["pki", "list"], ["pki", "revoke"],
        ["pki", "export-hub"], ["pki", "import-hub"], ["hub"], ["hub", "restore"], ["catalog"], ["catalog", "rebuild"],
        ["alerts"], ["alerts", "list"], ["alerts", "silence"], ["alerts", "test"],
        ["tasks", "cancel"],
        ["coordinator"], ["agent"], ["nodes"], ["artifacts"], ["transfer"], ["mutants"], ["events"], ["schedules"],
        ["tasks"],
        ["tasks", "list"],
        ["tasks", "submit"], ["run"], ["runs"], ["runs", "list"], ["runs", "show"], ["status"], ["df"], ["check"],
        ["config"], ["config", "check"],
    ]

    @Test(arguments: commands)
    func helpMatchesItsSnapshot(_ command: [String]) async throws {
        try await blocking {
            let result = try Command.scmBackup(command + ["--help"])
            #expect(result.status == 0, "\(result.stderr)")
            let name = command.isEmpty ? "scm-backup" : command.joined(separator: "-")
            let snapshot = Paths.packageRoot + "/Tests/EndToEndTests/Snapshots/\(name).txt"
            if ProcessInfo.processInfo.environment["SCM_BACKUP_RECORD_SNAPSHOTS"] == "1" {
                try result.stdout.write(toFile: snapshot, atomically: true, encoding: .utf8)
                return
            }
            let expected = try String(contentsOfFile: snapshot, encoding: .utf8)
            #expect(result.stdout == expected, "help of '\(name)' changed; re-record after review")
        }
    }
}
