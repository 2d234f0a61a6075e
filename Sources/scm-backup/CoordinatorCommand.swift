import ArgumentParser
import BackupCoordinator
import BackupCore
import Foundation
import Logging

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: the site's HTTPS server over mutual TLS, with its catalog.",
        discussion: """
            The configuration file (TOML, see deploy/site.example.toml) names the listen address, \
            the coordinator's certificate and key, the site CA, the revocation list, the catalog \
            database and the site: nodes, their sources, pairings. An unknown key or impossible \
            value stops start-up with file, line and key named. Only clients with a certificate \
            from the site CA get in; their name and role come from the certificate. Stops \
            gracefully on SIGTERM or SIGINT; the catalog (SQLite, WAL) lets a restarted \
            coordinator continue where it stopped.
            """
    )

    @Option(help: "The hub's configuration file (TOML).") var config: String
    @Option(name: .customLong("port-file"), help: "Write the port listened on to this file once listening.")
    var portFile: String?
    @Option(
        name: .customLong("dashboard-port-file"),
        help: "Write the dashboard's port ([dashboard] listen) to this file once it listens.")
    var dashboardPortFile: String?
    @Flag(name: .customLong("check"), help: "Read and check the configuration, print a summary, and exit.")
    var checkOnly = false
    @OptionGroup var logLevel: LogLevelOption

    func run() async throws {
        let printer = Printer(json: false)
        do {
            let configuration = try CoordinatorConfiguration.load(config)
            let caKeys = CoordinatorServer.caKeysBeside(configuration)
            if checkOnly {
                try CoordinatorServer.checkTLSFiles(configuration)
                if let key = caKeys.first {
                    throw BackupError(
                        .configInvalid,
                        "The CA key '\(key)' is readable beside the hub's keys: the coordinator never needs it, and whoever takes the hub could mint any identity with it. Keep the CA on an admin machine and copy only the hub's part (see deploy/README.md)."
                    )
                }
                let site = configuration.site
                let sources = site.nodes.values.reduce(0) { $0 + $1.sources.count }
                print(
                    "\(config): ok: \(site.nodes.count) nodes, \(sources) sources, \(site.pairings.count) pairings; listens on \(configuration.host):\(configuration.port)"
                )
                return
            }
            logLevel.bootstrap(configured: configuration.logLevel)
            for key in caKeys {
                Logger(label: "scm-backup.coordinator").warning(
                    "the CA key is readable on the hub; move it to an admin machine", metadata: ["scm.file": "\(key)"])
            }
            let catalog = try Catalog(path: configuration.database)
            let portFile = portFile
            let dashboardPortFile = dashboardPortFile
            let dashboardURL = configuration.dashboard.map { ($0.isOpen ? "http://" : "https://") + $0.host }
            let coordinator = try Coordinator(configuration: configuration, catalog: catalog)
            // The port file is how scripts and tests find a port-0 server: failing to write it
            // stops the service group (gracefully) and the command with the error.
            try await coordinator.run(
                configPath: config,
                onRunning: { port in
                    guard let portFile else { return }
                    try FileSystem.writeAtomically(Array("\(port)\n".utf8), to: portFile, mode: 0o644)
                },
                onDashboard: { port in
                    Logger(label: "scm-backup.coordinator").notice(
                        "the dashboard listens", metadata: ["scm.url": "\(dashboardURL ?? ""):\(port)/"])
                    guard let dashboardPortFile else { return }
                    try FileSystem.writeAtomically(Array("\(port)\n".utf8), to: dashboardPortFile, mode: 0o644)
                })
        } catch {
            printer.report(error)
            throw Exit.failure
        }
    }
}
