import ArgumentParser
import BackupCore

/// Options that say how to reach a source's tools, shared by backup and recover.
struct ToolOptions: ParsableArguments {
    @Option(name: .customLong("svnadmin"), help: "Path of svnadmin. The default is the one on PATH.")
    var svnadmin: String?
    @Option(name: .customLong("svnlook"), help: "Path of svnlook. The default is the one on PATH.")
    var svnlook: String?
    @Option(name: .customLong("git"), help: "Path of git. The default is the one on PATH.")
    var git: String?
    @Option(
        name: .customLong("trac-admin"),
        help: "Path of trac-admin. Without one on PATH, Trac is copied by the built-in hotcopy.")
    var tracAdmin: String?
    @Option(name: .customLong("sqlite3"), help: "Path of sqlite3. The default is the one on PATH.")
    var sqlite3: String?
    @Option(
        name: .customLong("env"),
        help: "KEY=VALUE added to the environment of every tool (repeatable), e.g. LD_LIBRARY_PATH=/opt/sqlite/lib.")
    var environment: [String] = []

    func tools() throws -> SourceTools {
        var tools = SourceTools()
        if let svnadmin { tools.svnadmin.program = svnadmin }
        if let svnlook { tools.svnlook.program = svnlook }
        if let git { tools.git.program = git }
        if let tracAdmin { tools.tracAdmin.program = tracAdmin }
        if let sqlite3 { tools.sqlite3.program = sqlite3 }
        var env: [String: String] = [:]
        for pair in environment {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw BackupError(.invalidArgument, "--env '\(pair)' is not KEY=VALUE.")
            }
            env[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        tools.addEnvironment(env)
        return tools
    }
}
