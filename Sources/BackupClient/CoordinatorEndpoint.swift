import Foundation

/// How to reach the coordinator: its URL and the caller's certificate, key and site CA.
public struct CoordinatorEndpoint: Sendable {
    /// e.g. `https://hub.example.org:8443`.
    public var url: String
    public var certificate: String
    public var privateKey: String
    public var caCertificate: String
    /// The common name the coordinator's certificate must carry, with role `coordinator`.
    /// The default is `hub`.
    public var coordinatorName: String

    public init(
        url: String, certificate: String, privateKey: String, caCertificate: String, coordinatorName: String = "hub"
    ) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.certificate = certificate
        self.privateKey = privateKey
        self.caCertificate = caCertificate
        self.coordinatorName = coordinatorName
    }
}
