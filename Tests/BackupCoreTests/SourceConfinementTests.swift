import BackupTesting
import Foundation
import Testing

@testable import BackupCore

/// A source must lie inside the node's `source_roots` on the file system as it is: a link
/// anywhere in its path, a git repository's alternates, an svn repository's `db` or a Trac
/// environment's repository that leads outside is refused, naming the file.
@Suite(.timeLimit(.minutes(2)))
struct SourceConfinementTests {
    @Test func aSymlinkOutOfTheRootsIsRefusedWhereThePathTextLooksInside() async throws {
        try await blocking {
            try withTemporaryDirectory("confine-link") { dir in
                try FileSystem.makeDirectories(dir.file("roots/scm"))
                try FileSystem.makeDirectories(dir.file("secret"))
                try "x".write(toFile: dir.file("secret/shadow"), atomically: true, encoding: .utf8)
                try FileManager.default.createSymbolicLink(
                    atPath: dir.file("roots/scm/config"), withDestinationPath: dir.file("secret"))
                let confinement = SourceConfinement(roots: [dir.file("roots/scm")])
                let error = #expect(throws: BackupError.self) {
                    try confinement.check("config", kind: .folder, path: dir.file("roots/scm/config"))
                }
                #expect(error?.code == .refused)
                #expect(error?.message.contains("outside this node's source_roots") == true)
                // A root that is itself reached through a link still allows what lies in it.
                try FileManager.default.createSymbolicLink(
                    atPath: dir.file("alias"), withDestinationPath: dir.file("roots/scm"))
                try FileSystem.makeDirectories(dir.file("roots/scm/inside"))
                let inside = try SourceConfinement(roots: [dir.file("alias")])
                    .check("inside", kind: .folder, path: dir.file("roots/scm/inside"))
                #expect(inside.hasSuffix("/roots/scm/inside"))
                // A sibling whose name starts like the root is not inside it.
                try FileSystem.makeDirectories(dir.file("roots/scm2"))
                #expect(throws: BackupError.self) {
                    try confinement.check("scm2", kind: .folder, path: dir.file("roots/scm2"))
                }
            }
        }
    }

    @Test func aGitRepositoryWithAlternatesAndAnSvnRepositoryWhoseDbLeadsOutAreRefused() async throws {
        try await blocking {
            try withTemporaryDirectory("confine-repos") { dir in
                try FileSystem.makeDirectories(dir.file("scm"))
                try SourceFixtures.gitRepository(at: dir.file("scm/tools.git"))
                let confinement = SourceConfinement(roots: [dir.file("scm")])
                _ = try confinement.check("tools", kind: .git, path: dir.file("scm/tools.git"))
                try (dir.file("elsewhere.git/objects") + "\n").write(
                    toFile: dir.file("scm/tools.git/objects/info/alternates"), atomically: true, encoding: .utf8)
                let git = #expect(throws: BackupError.self) {
                    try confinement.check("tools", kind: .git, path: dir.file("scm/tools.git"))
                }
                #expect(git?.message.contains("objects/info/alternates") == true)

                try SourceFixtures.svnRepository(at: dir.file("scm/env"), commits: 1)
                _ = try confinement.check("env", kind: .svn, path: dir.file("scm/env"))
                try FileManager.default.moveItem(atPath: dir.file("scm/env/db"), toPath: dir.file("outside-db"))
                try FileManager.default.createSymbolicLink(
                    atPath: dir.file("scm/env/db"), withDestinationPath: dir.file("outside-db"))
                let svn = #expect(throws: BackupError.self) {
                    try confinement.check("env", kind: .svn, path: dir.file("scm/env"))
                }
                #expect(
                    svn?.message.contains("'\(SourceConfinement.resolve(dir.file("scm/env"))!)/db' resolves to") == true
                )
            }
        }
    }

    @Test func aTracEnvironmentWhoseRepositoryLiesOutsideTheRootsIsRefused() async throws {
        try await blocking {
            try withTemporaryDirectory("confine-trac") { dir in
                try FileSystem.makeDirectories(dir.file("scm"))
                try SourceFixtures.svnRepository(at: dir.file("outside-repo"), commits: 1)
                try SourceFixtures.tracEnvironment(at: dir.file("scm/proj"), repository: dir.file("outside-repo"))
                let error = #expect(throws: BackupError.self) {
                    try SourceConfinement(roots: [dir.file("scm")]).check(
                        "proj", kind: .trac, path: dir.file("scm/proj"))
                }
                #expect(error?.message.contains("names repository") == true)
                // Both inside: accepted.
                _ = try SourceConfinement(roots: [dir.file("scm"), dir.file("outside-repo")])
                    .check("proj", kind: .trac, path: dir.file("scm/proj"))
            }
        }
    }
}
