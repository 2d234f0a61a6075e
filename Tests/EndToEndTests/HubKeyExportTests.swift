import BackupTesting
import Foundation
import Testing

/// `pki export-hub` and `pki import-hub`: the hub's private keys go to an offline safe only
/// encrypted to an operator's X25519 key (made with the real openssl), come back byte for byte
/// with that key, and are refused to anyone else, after any change, and over existing files.
@Suite(.timeLimit(.minutes(2)))
struct HubKeyExportTests {
    @Test func theHubsKeysGoToTheSafeEncryptedAndComeBackOnlyToTheirRecipient() async throws {
        try await blocking {
            try withTemporaryDirectory("hub-keys") { dir in
                try ConfigFileTests.makePKI(dir, certs: dir.file("certs"), [("hub", "coordinator")])
                let site = ConfigFileTests.good.replacingOccurrences(
                    of: "lease_seconds = 60",
                    with:
                        "lease_seconds = 60\nticket_key = \"pki/ticket-signing.key\"\npurge_key = \"pki/purge-signing.key\""
                )
                try site.write(toFile: dir.file("site.toml"), atomically: true, encoding: .utf8)
                for name in ["op", "other"] {
                    let made = try Command.run(
                        "openssl", ["genpkey", "-algorithm", "X25519", "-out", dir.file("\(name).key")])
                    #expect(made.status == 0, "\(made.stderr)")
                    let pub = try Command.run(
                        "openssl", ["pkey", "-in", dir.file("\(name).key"), "-pubout", "-out", dir.file("\(name).pub")])
                    #expect(pub.status == 0, "\(pub.stderr)")
                }
                let export = try Command.scmBackup([
                    "pki", "export-hub", "--config", dir.file("site.toml"), "--to", dir.file("safe/hub-keys.json"),
                    "--recipient", dir.file("op.pub"),
                ])
                #expect(export.status != 0, "the safe's folder must exist")
                try FileManager.default.createDirectory(atPath: dir.file("safe"), withIntermediateDirectories: true)
                let written = try Command.scmBackup([
                    "pki", "export-hub", "--config", dir.file("site.toml"), "--to", dir.file("safe/hub-keys.json"),
                    "--recipient", dir.file("op.pub"),
                ])
                #expect(written.status == 0, "\(written.stderr)")
                #expect(
                    written.stdout.contains("hub.pem, hub.key, ca.pem, ticket-signing.key, purge-signing.key of 'hub'"))
                let file = try String(contentsOfFile: dir.file("safe/hub-keys.json"), encoding: .utf8)
                // No key text in the clear: not the PEM armour, not a line of any key's base64.
                #expect(!file.contains("PRIVATE KEY"))
                for key in ["certs/hub.key", "pki/ticket-signing.key", "pki/purge-signing.key"] {
                    let lines = try String(contentsOfFile: dir.file(key), encoding: .utf8).split(separator: "\n")
                    for line in lines where !line.hasPrefix("-----") { #expect(!file.contains(line)) }
                }
                let mode = try #require(
                    try FileManager.default.attributesOfItem(atPath: dir.file("safe/hub-keys.json"))[.posixPermissions]
                        as? Int)
                #expect(mode == 0o600)
                // Never over an existing file.
                let again = try Command.scmBackup([
                    "pki", "export-hub", "--config", dir.file("site.toml"), "--to", dir.file("safe/hub-keys.json"),
                    "--recipient", dir.file("op.pub"),
                ])
                #expect(again.status == 1 && again.stderr.contains("exists; it is not overwritten"))
                // A recipient that is not an X25519 key is named.
                let signing = try Command.scmBackup([
                    "pki", "export-hub", "--config", dir.file("site.toml"), "--to", dir.file("x.json"),
                    "--recipient", dir.file("pki/ticket-signing.pub"),
                ])
                #expect(
                    signing.status == 1 && signing.stderr.contains("ticket-signing.pub' is not an X25519 public key"))

                // Another identity cannot open it.
                let stranger = try Command.scmBackup([
                    "pki", "import-hub", "--from", dir.file("safe/hub-keys.json"), "--identity", dir.file("other.key"),
                    "--to", dir.file("new-hub"),
                ])
                #expect(stranger.status == 1 && stranger.stderr.contains("not to this identity"), "\(stranger.stderr)")
                // A changed byte of what is bound to the ciphertext: refused.
                let tampered = file.replacingOccurrences(of: "\"coordinator\":\"hub\"", with: "\"coordinator\":\"hux\"")
                #expect(tampered != file)
                try tampered.write(toFile: dir.file("tampered.json"), atomically: true, encoding: .utf8)
                let changed = try Command.scmBackup([
                    "pki", "import-hub", "--from", dir.file("tampered.json"), "--identity", dir.file("op.key"),
                    "--to", dir.file("new-hub"),
                ])
                #expect(changed.status == 1 && changed.stderr.contains("was changed or damaged"), "\(changed.stderr)")
                #expect(!FileManager.default.fileExists(atPath: dir.file("new-hub/hub.key")))

                // The recipient opens it: the same bytes, 0600.
                let opened = try Command.scmBackup([
                    "pki", "import-hub", "--from", dir.file("safe/hub-keys.json"), "--identity", dir.file("op.key"),
                    "--to", dir.file("new-hub"),
                ])
                #expect(opened.status == 0, "\(opened.stderr)")
                for (key, original) in [
                    ("hub.key", "certs/hub.key"), ("hub.pem", "certs/hub.pem"),
                    ("ticket-signing.key", "pki/ticket-signing.key"), ("purge-signing.key", "pki/purge-signing.key"),
                ] {
                    #expect(
                        try Data(contentsOf: URL(fileURLWithPath: dir.file("new-hub/" + key)))
                            == Data(contentsOf: URL(fileURLWithPath: dir.file(original))), "\(key)")
                }
                // Into a folder that holds one of them already: nothing is written.
                try FileManager.default.removeItem(atPath: dir.file("new-hub/hub.pem"))
                let over = try Command.scmBackup([
                    "pki", "import-hub", "--from", dir.file("safe/hub-keys.json"), "--identity", dir.file("op.key"),
                    "--to", dir.file("new-hub"),
                ])
                #expect(over.status == 1 && over.stderr.contains("new-hub/hub.key' exists; nothing was written"))
                #expect(!FileManager.default.fileExists(atPath: dir.file("new-hub/hub.pem")))
            }
        }
    }
}
