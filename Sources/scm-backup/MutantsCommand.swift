import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

struct MutantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutants",
        abstract: "List copies that failed verification: quarantined, mutant or mismatching the catalog.",
        discussion: """
            A mutant found by a verify task is moved to <store>/.quarantine on its node (never \
            deleted) and repaired from an intact copy on another node; it is listed here until \
            the repaired copy arrives. Exit 4 when there is any.
            """)
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Mutant: Encodable {
        var node: String
        var path: String
        var state: CopyState
        var problem: String?
        var verifiedAt: Date?
    }

    func run() async throws {
        var found = false
        try await runSiteCommand(json: output.json) {
            let artifacts = try await CoordinatorClient.with(try connection.endpoint()) { try await $0.artifacts() }
            let mutants = artifacts.flatMap { a in
                a.copies.filter { $0.state.failedVerification }.map {
                    Mutant(
                        node: $0.node, path: $0.path, state: $0.state, problem: $0.problem, verifiedAt: $0.verifiedAt)
                }
            }
            found = !mutants.isEmpty
            if output.json { return try Printer(json: true).printJSON(mutants) }
            for m in mutants {
                print(
                    "\(m.node.padding(toLength: 12, withPad: " ", startingAt: 0)) \(m.state)  \(m.path)\(m.problem.map { "\n    \($0)" } ?? "")"
                )
            }
            if mutants.isEmpty { print("no mutants") }
        }
        if found { throw Exit.mutants }
    }
}
