import ArgumentParser
import BackupClient
import BackupCore
import BackupProtocol
import Foundation

/// How the operator reaches the coordinator: each option, else its environment variable, else
/// the `[operator]` table of a configuration file (`--config` or SCM_BACKUP_CONFIG), e.g.
///
///     [operator]
///     coordinator = "https://hub.example.org:8443"
///     certificate = "alice.pem"        # relative to the file's folder
///     key = "alice.key"
///     ca = "ca.pem"
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The coordinator's URL, e.g. https://hub:8443. Or SCM_BACKUP_COORDINATOR.") var coordinator: String?
    @Option(help: "The operator's certificate. Or SCM_BACKUP_CERT.") var cert: String?
    @Option(help: "The operator's key. Or SCM_BACKUP_KEY.") var key: String?
    @Option(help: "The site CA certificate. Or SCM_BACKUP_CA.") var ca: String?
    @Option(
        name: .customLong("coordinator-name"),
        help:
            "The name the coordinator's certificate must carry (role coordinator). Or SCM_BACKUP_COORDINATOR_NAME; default: hub."
    ) var coordinatorName: String?
    @Option(help: "A file with an [operator] table giving the five above. Or SCM_BACKUP_CONFIG.") var config: String?

    func endpoint() throws -> CoordinatorEndpoint {
        let env = ProcessInfo.processInfo.environment
        var fromFile: [String: String] = [:]
        if let path = config ?? env["SCM_BACKUP_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let file = try ConfigFile(path: path)
            let top = file.top
            guard let table = try top.table("operator") else {
                throw top.error(nil, "missing table [operator] (coordinator, certificate, key, ca)")
            }
            for key in ["coordinator", "certificate", "key", "ca", "coordinator_name"] {
                if let v = try table.string(key) {
                    fromFile[key] = key == "coordinator" || key == "coordinator_name" ? v : file.resolve(v)
                }
            }
            try table.finish()
            try top.finish()
        }
        func value(_ option: String?, _ variable: String, _ flag: String, _ key: String) throws -> String {
            guard let v = option ?? env[variable].flatMap({ $0.isEmpty ? nil : $0 }) ?? fromFile[key], !v.isEmpty else {
                throw BackupError(
                    .invalidArgument,
                    "Give \(flag), set \(variable), or name a file with an [operator] table by --config.")
            }
            return v
        }
        return CoordinatorEndpoint(
            url: try value(coordinator, "SCM_BACKUP_COORDINATOR", "--coordinator", "coordinator"),
            certificate: try value(cert, "SCM_BACKUP_CERT", "--cert", "certificate"),
            privateKey: try value(key, "SCM_BACKUP_KEY", "--key", "key"),
            caCertificate: try value(ca, "SCM_BACKUP_CA", "--ca", "ca"),
            coordinatorName: coordinatorName ?? env["SCM_BACKUP_COORDINATOR_NAME"].flatMap { $0.isEmpty ? nil : $0 }
                ?? fromFile["coordinator_name"] ?? "hub")
    }
}

/// Runs an operator command: errors are printed, an unreachable coordinator exits with 10.
func runSiteCommand(json: Bool, _ body: () async throws -> Void) async throws {
    let printer = Printer(json: json)
    do {
        try await body()
    } catch let unreachable as CoordinatorUnreachable {
        printer.report(BackupError(.io, unreachable.description))
        throw Exit.unreachable
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printer.report(error)
        throw Exit.failure
    }
}
