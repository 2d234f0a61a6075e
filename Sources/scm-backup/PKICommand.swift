import ArgumentParser
import BackupCoordinator
import BackupCore
import BackupProtocol
import Foundation

struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Manage the site's certificate authority: make it, issue node certificates, list and revoke them.",
        discussion: """
            The CA folder holds ca.pem and ca.key, the Ed25519 keys that sign transfer tickets and \
            purge orders (one per purpose), issued.json and revoked.json. The running coordinator \
            never needs ca.key: keep it offline if you wish. Everything is PEM that openssl reads.
            """,
        subcommands: [Init.self, Issue.self, List.self, Revoke.self, ExportHub.self, ImportHub.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the site CA and the signing keys.")
        @Option(help: "The CA folder (created 0700; must not hold a CA).") var dir: String
        @Option(help: "The site's name, written into the CA's name.") var site: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let ca = try SiteCA.initialise(at: dir, site: site)
                if output.json {
                    try printer.printJSON(["folder": dir, "notAfter": "\(ca.certificate.notValidAfter)"])
                } else {
                    print("made the CA of site '\(site)' in \(dir) (valid until \(ca.certificate.notValidAfter))")
                }
            }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a key and certificate for a node or operator.",
            discussion: "Writes <out>/<name>.key (0600) and <out>/<name>.pem (certificate and CA).")
        @Option(help: "The CA folder.") var dir: String
        @Option(help: "The node's or operator's name.") var name: String
        @Option(help: "agent, coordinator, operator (read-only) or admin.") var role: String
        @Option(name: .customLong("dns"), help: "A DNS name of the node (repeatable).") var dnsNames: [String] = []
        @Option(name: .customLong("ip"), help: "An IP address of the node (repeatable).") var ipAddresses: [String] = []
        @Option(help: "Days of validity.") var days = 397
        @Option(help: "Where to write the key and certificate. The default is the CA folder.") var out: String?
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                guard let role = NodeRole(rawValue: role) else {
                    throw BackupError(
                        .invalidArgument,
                        "Unknown role '\(role)': use one of \(NodeRole.allCases.map(\.rawValue).joined(separator: ", "))."
                    )
                }
                let issued = try SiteCA.open(dir).issue(
                    name: name, role: role, dnsNames: dnsNames, ipAddresses: ipAddresses, days: days, output: out ?? dir
                )
                if output.json {
                    try printer.printJSON(issued)
                } else {
                    print(
                        "issued \(issued.role.rawValue) certificate \(issued.serial) for '\(issued.name)', valid until \(issued.notAfter)"
                    )
                    print("  \(out ?? dir)/\(name).pem and \(out ?? dir)/\(name).key")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List issued certificates with serials, expiry and revocation.")
        @Option(help: "The CA folder.") var dir: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let issued = try SiteCA.open(dir).issuedCertificates()
                if output.json {
                    try printer.printJSON(issued)
                    return
                }
                for c in issued {
                    let state = c.revokedAt.map { "REVOKED \($0)" } ?? "valid until \(c.notAfter)"
                    print(
                        "\(c.serial)  \(c.role.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(c.name)  \(state)"
                    )
                }
                if issued.isEmpty { print("no certificates issued yet") }
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate by serial; the coordinator and agents refuse it from then on.")
        @Option(help: "The CA folder.") var dir: String
        @Option(help: "The certificate's serial, as 'pki list' shows it.") var serial: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let revoked = try SiteCA.open(dir).revoke(serial: serial)
                if output.json {
                    try printer.printJSON(revoked)
                } else {
                    print(
                        "revoked \(revoked.serial) of '\(revoked.name)'; distribute \(dir)/\(SiteCA.revokedFile) to the coordinator"
                    )
                }
            }
        }
    }

    struct ExportHub: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-hub",
            abstract: "Write the hub's private keys, encrypted to an operator's key, for an offline safe.",
            discussion: """
                Exports the coordinator's certificate and key, the site CA certificate and its ticket \
                and purge signing keys, as \
                the site file names them, encrypted with HPKE to an X25519 public key (make one with \
                'openssl genpkey -algorithm X25519 -out op.key' and 'openssl pkey -in op.key -pubout \
                -out op.pub'). Only that key's holder opens it, with 'pki import-hub'. The hub's \
                self-backup never holds these keys.
                """)
        @Option(help: "The hub's site file.") var config: String
        @Option(help: "The file to write (0600; an existing file is never overwritten).") var to: String
        @Option(help: "The operator's X25519 public key (PEM).") var recipient: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let site = try CoordinatorConfiguration.load(config)
                let key = try X25519PEM.readPublicKey(recipient)
                guard try FileSystem.linkStatus(to) == nil else {
                    throw BackupError(.refused, "'\(to)' exists; it is not overwritten.")
                }
                var named: [(String, String)] = [
                    ("certificate", site.certificate), ("key", site.privateKey), ("ca", site.caCertificate),
                ]
                if let ticket = site.ticketKey { named.append(("ticket_key", ticket)) }
                if let purge = site.purgeKey { named.append(("purge_key", purge)) }
                let entries = try named.map { (name, path) in
                    HubKeyExport.Entry(
                        key: name, file: (path as NSString).lastPathComponent,
                        pem: String(decoding: try FileSystem.readSmallFile(path), as: UTF8.self))
                }
                let identity = try PeerIdentity(certificate: try PEMFiles.certificate(site.certificate))
                let sealed = try HubKeyExport.seal(entries, coordinator: identity.name, to: key)
                try FileSystem.writeAtomically(Array(try WireJSON.encoder().encode(sealed)), to: to)
                if output.json {
                    try printer.printJSON(["file": to, "recipient": sealed.recipient])
                } else {
                    print(
                        "wrote \(entries.map(\.file).joined(separator: ", ")) of '\(identity.name)' to \(to), encrypted to key \(sealed.recipient)"
                    )
                }
            }
        }
    }

    struct ImportHub: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-hub",
            abstract: "Open a key export with the operator's private key, into a new hub's folder.",
            discussion: "Writes each key under its own file name (0600); refuses before writing when any exists.")
        @Option(help: "The file 'pki export-hub' wrote.") var from: String
        @Option(help: "The operator's X25519 private key (PEM).") var identity: String
        @Option(help: "The folder to write the keys into.") var to: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            let printer = Printer(json: output.json)
            try printer.run {
                let sealed: HubKeyExport
                do {
                    sealed = try WireJSON.decoder().decode(
                        HubKeyExport.self, from: Data(try FileSystem.readSmallFile(from)))
                } catch let error as DecodingError {
                    throw BackupError(.invalidArgument, "'\(from)' is not a key export: \(WireJSON.describe(error)).")
                }
                let entries = try sealed.open(with: try X25519PEM.readPrivateKey(identity), file: from)
                try FileSystem.makeDirectories(to)
                for entry in entries {
                    let parts = entry.file.split(separator: "/", omittingEmptySubsequences: false)
                    guard parts.count == 1, !entry.file.hasPrefix("."), !entry.file.isEmpty else {
                        throw BackupError(
                            .refused, "'\(from)' names the file '\(entry.file)', which is not a plain file name.")
                    }
                    guard try FileSystem.linkStatus(to + "/" + entry.file) == nil else {
                        throw BackupError(
                            .refused,
                            "'\(to)/\(entry.file)' exists; nothing was written (remove it or choose another folder).")
                    }
                }
                for entry in entries {
                    try FileSystem.writeAtomically(Array(entry.pem.utf8), to: to + "/" + entry.file)
                }
                if output.json {
                    try printer.printJSON(entries.map { ["key": $0.key, "file": to + "/" + $0.file] })
                } else {
                    for entry in entries { print("\(entry.key): \(to)/\(entry.file)") }
                }
            }
        }
    }
}
