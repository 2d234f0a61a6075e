import ArgumentParser
import BackupCore
import BackupProtocol

struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Manage the site's certificate authority: make it, issue node certificates, list and revoke them.",
        discussion: """
            The CA folder holds ca.pem and ca.key, the Ed25519 keys that sign transfer tickets and \
            purge orders (one per purpose), issued.json and revoked.json. The running coordinator \
            never needs ca.key: keep it offline if you wish. Everything is PEM that openssl reads.
            """,
        subcommands: [Init.self, Issue.self, List.self, Revoke.self]
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
}
