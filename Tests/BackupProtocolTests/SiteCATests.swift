import BackupCore
import BackupProtocol
import BackupTesting
import Crypto
import Foundation
import Testing
import X509

/// The site PKI, checked with openssl as the outside judge.
struct SiteCATests {
    @Test func issuedCertificatesVerifyWithOpenSSLAndCarryNameRoleAndAddresses() throws {
        try withTemporaryDirectory("pki") { dir in
            let ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            let agent = try ca.issue(
                name: "backup1", role: .agent, dnsNames: ["backup1.example.org"], output: dir.file("certs"))
            let admin = try ca.issue(name: "alice", role: .admin, output: dir.file("certs"))
            for name in ["backup1", "alice"] {
                let verify = try Command.run(
                    "openssl", ["verify", "-CAfile", dir.file("ca/ca.pem"), dir.file("certs/\(name).pem")])
                #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
                #expect(verify.stdout.hasSuffix(": OK\n"))
                #expect(try FileSystem.linkStatus(dir.file("certs/\(name).key"))!.st_mode & 0o777 == 0o600)
                let key = try Command.run("openssl", ["pkey", "-in", dir.file("certs/\(name).key"), "-noout"])
                #expect(key.status == 0, "\(key.stderr)")
            }
            let text = try Command.run("openssl", ["x509", "-in", dir.file("certs/backup1.pem"), "-noout", "-text"])
                .stdout
            #expect(text.contains("DNS:backup1.example.org"))
            #expect(text.contains("DNS:" + PeerIdentity.identityHost(name: "backup1", role: .agent)))
            #expect(!text.contains("IP Address"))
            #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
            let adminText = try Command.run("openssl", ["x509", "-in", dir.file("certs/alice.pem"), "-noout", "-text"])
                .stdout
            #expect(adminText.contains("TLS Web Client Authentication"))
            #expect(!adminText.contains("TLS Web Server Authentication"))

            let peer = try PeerIdentity(certificate: try PEMFiles.certificate(dir.file("certs/backup1.pem")))
            #expect(peer.name == "backup1")
            #expect(peer.role == .agent)
            #expect(peer.serial == agent.serial)
            #expect(try PeerIdentity(certificate: try PEMFiles.certificate(dir.file("certs/alice.pem"))).role == .admin)
            #expect(try ca.issuedCertificates().map(\.serial) == [agent.serial, admin.serial])
            #expect(
                try PEMFiles.certificates(dir.file("certs/alice.pem")).count == 2,
                "the certificate file carries the CA too")
        }
    }

    @Test func aCertificateFromAnotherCAFailsVerification() throws {
        try withTemporaryDirectory("pki-other") { dir in
            _ = try SiteCA.initialise(at: dir.file("ca"), site: "ours")
            let other = try SiteCA.initialise(at: dir.file("other"), site: "theirs")
            _ = try other.issue(name: "intruder", role: .agent, output: dir.file("certs"))
            let verify = try Command.run(
                "openssl", ["verify", "-CAfile", dir.file("ca/ca.pem"), dir.file("certs/intruder.pem")])
            #expect(verify.status != 0)
        }
    }

    @Test func revocationIsRecordedAndListed() throws {
        try withTemporaryDirectory("pki-revoke") { dir in
            let ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            let a = try ca.issue(name: "srv1", role: .agent, output: dir.file("certs"))
            let b = try ca.issue(name: "srv2", role: .agent, output: dir.file("certs"))
            try ca.revoke(serial: a.serial.uppercased())
            let list = try ca.revocations()
            #expect(list.isRevoked(a.serial))
            #expect(!list.isRevoked(b.serial))
            #expect(try ca.issuedCertificates().map { $0.revokedAt != nil } == [true, false])
            let error = #expect(throws: BackupError.self) { try ca.revoke(serial: "00ff") }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("00ff") == true)
        }
    }

    @Test func signingKeysAreSeparateEd25519KeysThatOpenSSLReads() throws {
        try withTemporaryDirectory("pki-sign") { dir in
            _ = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            var publics: [Data] = []
            for purpose in SiteCA.SigningPurpose.allCases {
                let key = try Ed25519PEM.readPrivateKey(dir.file("ca/\(purpose.rawValue).key"))
                let pub = try Ed25519PEM.readPublicKey(dir.file("ca/\(purpose.rawValue).pub"))
                #expect(key.publicKey.rawRepresentation == pub.rawRepresentation)
                let message = Data("ticket".utf8)
                #expect(pub.isValidSignature(try key.signature(for: message), for: message))
                let ossl = try Command.run(
                    "openssl", ["pkey", "-in", dir.file("ca/\(purpose.rawValue).key"), "-noout", "-text"])
                #expect(ossl.status == 0 && ossl.stdout.contains("ED25519"), "\(ossl.stderr)")
                publics.append(pub.rawRepresentation)
            }
            #expect(Set(publics).count == 2, "one key per purpose")
        }
    }

    @Test func badInputIsRefusedNamingTheValue() throws {
        try withTemporaryDirectory("pki-bad") { dir in
            let ca = try SiteCA.initialise(at: dir.file("ca"), site: "test")
            let again = #expect(throws: BackupError.self) { try SiteCA.initialise(at: dir.file("ca"), site: "test") }
            #expect(again?.code == .refused)
            let ip = #expect(throws: BackupError.self) {
                try ca.issue(name: "n", role: .operator, ipAddresses: ["300.1.1.1"], output: dir.path)
            }
            #expect(ip?.message.contains("'300.1.1.1'") == true)
            // An agent's or the coordinator's certificate carries no IP name: it would match any
            // peer at that address, and the CA alone makes identity names.
            let agentIP = #expect(throws: BackupError.self) {
                try ca.issue(name: "n", role: .agent, ipAddresses: ["127.0.0.1"], output: dir.path)
            }
            #expect(agentIP?.message.contains("give no --ip") == true)
            let forged = #expect(throws: BackupError.self) {
                try ca.issue(
                    name: "n", role: .agent, dnsNames: [PeerIdentity.identityHost(name: "hub", role: .coordinator)],
                    output: dir.path)
            }
            #expect(forged?.message.contains("identity names") == true)
            let name = #expect(throws: BackupError.self) { try ca.issue(name: "../x", role: .agent, output: dir.path) }
            #expect(name?.code == .invalidArgument)
            let missing = #expect(throws: BackupError.self) { try SiteCA.open(dir.file("nowhere")) }
            #expect(missing?.message.contains("pki init") == true)
        }
    }
}
