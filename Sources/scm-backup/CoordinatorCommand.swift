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
            Only clients with a certificate from the site CA get in; their name and role come from \
            the certificate. Stops gracefully on SIGTERM or SIGINT; the catalog (SQLite, WAL) lets \
            a restarted coordinator continue where it stopped.
            """
    )

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.") var listen = "127.0.0.1:8443"
    @Option(help: "The coordinator's certificate (PEM, issued with role coordinator).") var cert: String
    @Option(help: "The coordinator's key.") var key: String
    @Option(help: "The site CA certificate.") var ca: String
    @Option(help: "The site's revoked.json (re-read when it changes).") var revoked: String?
    @Option(help: "The catalog database file.") var db: String
    @Option(name: .customLong("port-file"), help: "Write the port listened on to this file once listening.")
    var portFile: String?
    @Option(name: .customLong("lease-seconds"), help: "How long a lease lasts unless renewed.") var leaseSeconds:
        Double = 60

    func run() async throws {
        let printer = Printer(json: false)
        do {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                (0...65535).contains(port)
            else {
                throw BackupError(.invalidArgument, "--listen '\(listen)' is not HOST:PORT.")
            }
            var config = CoordinatorConfiguration(
                certificate: cert, privateKey: key, caCertificate: ca, revocationList: revoked, database: db)
            config.host = String(listen[..<colon])
            config.port = port
            config.leaseSeconds = leaseSeconds
            let catalog = try Catalog(path: db)
            let portFile = portFile
            let app = try CoordinatorServer.makeApplication(config, catalog: catalog) { port in
                guard let portFile else { return }
                // The port file is how scripts and tests find a port-0 server; failing to write it is fatal.
                do { try FileSystem.writeAtomically(Array("\(port)\n".utf8), to: portFile, mode: 0o644) } catch {
                    FileHandle.standardError.write(Data("scm-backup: \(error)\n".utf8))
                    Foundation.exit(1)
                }
            }
            try await app.runService()
        } catch {
            printer.report(error)
            throw Exit.failure
        }
    }
}
