import BackupTesting
import Foundation
import Testing

/// The local commands as a user runs them: the real binary, real files, exit codes and messages.
struct LocalCommandTests {
    private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(text.utf8))
    }

    struct BackupOutput: Decodable {
        struct DNAOut: Decodable {
            var sha256: String
            var size: Int64
            var revision: String
        }
        var path: String
        var dna: DNAOut
    }

    struct VerifyOutput: Decodable {
        struct Item: Decodable {
            var path: String
            var status: String
        }
        var artifacts: [Item]
        var counts: [String: Int]
    }

    @Test func backupVerifyAndAMutantWithExitCodeFour() async throws {
        try await blocking {
            try withTemporaryDirectory("cli") { dir in
                try FixtureTree.make(at: dir.file("src"))
                let store = dir.file("store")
                var paths: [String] = []
                for _ in 0..<2 {
                    let r = try Command.scmBackup([
                        "backup", "--store", store, "--node", "srv1", "--kind", "folder", "--name", "conf",
                        dir.file("src"),
                        "--json",
                    ])
                    #expect(r.status == 0, "\(r.stderr)")
                    let out = try decode(BackupOutput.self, r.stdout)
                    #expect(out.path.hasPrefix(store + "/srv1/folder/conf/"))
                    paths.append(out.path)
                }
                let ok = try Command.scmBackup(["verify", "--store", store])
                #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
                #expect(ok.stdout.contains("2 artifacts: 2 ok, 0 mutant"))

                try flip(paths[0])
                let bad = try Command.scmBackup(["verify", "--store", store])
                #expect(bad.status == 4)
                let mutantLines = bad.stdout.split(separator: "\n").filter { $0.hasPrefix("MUTANT") }
                #expect(mutantLines.count == 1)
                #expect(mutantLines.first?.hasSuffix(paths[0]) == true)

                let json = try Command.scmBackup(["verify", "--store", store, "--json", "--deep"])
                #expect(json.status == 4)
                let report = try decode(VerifyOutput.self, json.stdout)
                #expect(report.counts["mutant"] == 1)
                #expect(report.artifacts.filter { $0.status == "mutant" }.map(\.path) == [paths[0]])

                // Only the named artifact is verified when paths are given.
                let one = try Command.scmBackup(["verify", "--store", store, paths[1]])
                #expect(one.status == 0)
                #expect(one.stdout.contains("1 artifacts: 1 ok"))
            }
        }
    }

    @Test func listingsPrintTextAndJSON() async throws {
        try await blocking {
            try withTemporaryDirectory("cli") { dir in
                try FixtureTree.make(at: dir.file("src"))
                let store = dir.file("store")
                #expect(
                    try Command.scmBackup([
                        "backup", "--store", store, "--node", "srv1", "--kind", "folder", "--name", "conf",
                        dir.file("src"),
                    ]).status == 0)
                let ls = try Command.scmBackup(["ls", "--store", store])
                #expect(ls.status == 0)
                #expect(ls.stdout.contains("srv1/folder/conf  1 artifacts"))
                #expect(ls.stdout.contains(" last"))
                struct Source: Decodable {
                    var origin: String
                    var source: String
                    var artifacts: [[String: AnyDecodable]]
                }
                let lsJSON = try decode(
                    [Source].self, try Command.scmBackup(["ls", "--store", store, "--json"]).stdout)
                #expect(lsJSON.map(\.source) == ["conf"])
                #expect(lsJSON.first?.artifacts.count == 1)
                struct DU: Decodable {
                    var totalBytes: Int64
                    var partials: Int
                    var partialBytes: Int64
                    var fileSystemFreeBytes: Int64
                }
                let du = try decode(DU.self, try Command.scmBackup(["du", "--store", store, "--json"]).stdout)
                #expect(du.totalBytes > 0)
                #expect(du.partials == 0 && du.partialBytes == 0)
                #expect(du.fileSystemFreeBytes > 0)
                // A partial (a transfer to resume) is counted apart from the artifacts.
                let stamp = try #require(
                    FileManager.default.enumerator(atPath: store)?.compactMap { $0 as? String }.first {
                        $0.hasSuffix(".tar.gz")
                    })
                let partial = store + "/" + (stamp as NSString).deletingLastPathComponent + "/conf-9.tar.gz.partial"
                try Data(count: 1000).write(to: URL(fileURLWithPath: partial))
                let withPartial = try decode(DU.self, try Command.scmBackup(["du", "--store", store, "--json"]).stdout)
                #expect(withPartial.partials == 1 && withPartial.partialBytes == 1000)
                #expect(withPartial.totalBytes == du.totalBytes)
                #expect(
                    try Command.scmBackup(["du", "--store", store]).stdout.contains("1 partials (transfers to resume"))
            }
        }
    }

    @Test func errorsNameTheFaultAndUseTheDocumentedExitCodes() async throws {
        try await blocking {
            try withTemporaryDirectory("cli") { dir in
                let missing = dir.file("no-such-source")
                let r = try Command.scmBackup([
                    "backup", "--store", dir.file("store"), "--node", "n", "--kind", "folder", "--name", "x", missing,
                ])
                #expect(r.status == 1)
                #expect(r.stderr == "scm-backup: Source path '\(missing)' does not exist.\n")

                let j = try Command.scmBackup([
                    "backup", "--store", dir.file("store"), "--node", "n", "--kind", "folder", "--name", "x", missing,
                    "--json",
                ])
                #expect(j.status == 1)
                struct ErrorOut: Decodable {
                    struct Body: Decodable {
                        var code: String
                        var message: String
                    }
                    var error: Body
                }
                #expect(try decode(ErrorOut.self, j.stdout).error.code == "source-invalid")

                try FileManager.default.createDirectory(
                    atPath: dir.file("mnt/lost+found"), withIntermediateDirectories: true)
                let unmarked = try Command.scmBackup([
                    "backup", "--store", dir.file("mnt"), "--node", "n", "--kind", "folder", "--name", "x", dir.path,
                ])
                #expect(unmarked.status == 1)
                #expect(unmarked.stderr.contains("has no marker file"))
                #expect(unmarked.stderr.contains("init-store --store \(dir.file("mnt"))"))

                let kind = try Command.scmBackup([
                    "backup", "--store", dir.file("store"), "--node", "n", "--kind", "cvs", "--name", "x", dir.path,
                ])
                #expect(kind.status == 1)
                #expect(kind.stderr.contains("Unknown kind 'cvs'"))

                let usage = try Command.scmBackup(["backup", "--node", "n"])
                #expect(usage.status == 2)
                #expect(usage.stderr.contains("--store"))

                try "not a tar".write(toFile: dir.file("x.tar.gz"), atomically: false, encoding: .utf8)
                let check = try Command.scmBackup(["archive", "check", dir.file("x.tar.gz")])
                #expect(check.status == 1)
                #expect(check.stderr.contains("'\(dir.file("x.tar.gz"))'"))
            }
        }
    }

    @Test func theDemoRunsToTheEnd() async throws {
        try await blocking {
            try withTemporaryDirectory("demo") { dir in
                let r = try Command.scmBackup(["demo", "--dir", dir.file("site")])
                #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
                #expect(r.stdout.contains("Demo complete."))
                #expect(r.stdout.contains("exit code 4: the damaged artifact is a mutant"))
                #expect(r.stdout.contains("the recovered repository is at revision 5"))
            }
        }
    }

    private func flip(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// Decodes any JSON value, for listings whose fields a test does not inspect.
struct AnyDecodable: Decodable {
    init(from decoder: any Decoder) throws {}
}
