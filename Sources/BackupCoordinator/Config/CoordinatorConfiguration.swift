import BackupHTTP
import Foundation
import Logging

/// Where the coordinator listens, which identity it presents and whom it trusts.
public struct CoordinatorConfiguration: Sendable {
    /// The address to listen on. The default is 127.0.0.1.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one. The default is 8443.
    public var port = 8443
    /// The coordinator's certificate (PEM, chain) and key, issued with role `coordinator`.
    public var certificate: String
    public var privateKey: String
    /// The site CA certificate: only clients with certificates it issued get in.
    public var caCertificate: String
    /// The site's `revoked.json`, re-read when it changes; nil for none.
    public var revocationList: String?
    /// The catalog database file.
    public var database: String
    /// The file this configuration was read from (the site file); nil when built in code.
    public var siteFile: String?
    /// The hub's self-backup (`self_backup` in `[coordinator]`); nil: none is written.
    public var selfBackup: SelfBackupSettings?
    /// How often agents send heartbeats. The default is 15 seconds.
    public var heartbeatSeconds = 15
    /// How long a lease lasts unless renewed. The default is 60 seconds.
    public var leaseSeconds: Double = 60
    /// How long a holder may renew without progress. The default is 10 minutes.
    public var stallSeconds: Double = 600
    /// How long a lease request waits at most. The default is 30 seconds.
    public var maxLeaseWaitSeconds = 30
    /// The first retry delay of a failed task, doubled for each later attempt. The default is
    /// 10 seconds.
    public var retrySeconds: Double = 10
    /// The share of a node's copies one complete listing (inventory, verify) may mark missing
    /// at once; a listing that would mark more is held for an admin (`nodes` says why) instead
    /// of erasing them: it is most likely an unmounted or swapped disk. The default is 0.2.
    public var inventoryMissingMax = 0.2
    /// How long finished tasks (succeeded, failed, cancelled) stay in the catalog
    /// (`task_history_days`); older ones are deleted, so that the catalog of a site running for
    /// years stays small. Artifacts and copies are never pruned: they follow the stores. The
    /// default is 90 days.
    public var taskHistoryDays = 90
    /// How long the audit trail's events stay (`event_history_days`). The default is 400 days.
    public var eventHistoryDays = 400
    /// Days a finished run keeps its per-source record; after that only its summary.
    public var runHistoryDays = 400
    /// The least severe log level written (`log_level`: trace, debug, info, notice, warning,
    /// error, critical). The default is info; `--log-level` overrides it.
    public var logLevel: Logger.Level = .info
    /// The site: only its nodes may register, and tasks name its nodes and sources.
    public var site: SiteConfiguration
    /// The Ed25519 key that signs transfer tickets (`ticket-signing.key`); nil: no transfers.
    /// A ticket lives twice `leaseSeconds`; each renewal of the lease brings a fresh one.
    public var ticketKey: String?
    /// The Ed25519 key that signs purge orders (`purge-signing.key`); nil: no purges.
    public var purgeKey: String?
    /// Public keys of earlier hubs (`trusted_signing_keys`) whose receipts a rebuilt catalog
    /// believes besides its own ticket key's.
    public var trustedSigningKeys: [String] = []
    /// Handshake and idle timeouts and connection caps of the listener (`handshake_timeout`,
    /// `idle_timeout`, `max_connections`, `max_connections_per_address`). The defaults are 10 s,
    /// 60 s, 4096 and 64.
    public var limits = ListenerLimits()
    /// `[dashboard]`: the read-only pages and `/metrics` on their own listener; nil, none.
    public var dashboard: DashboardSettings?

    public init(
        certificate: String, privateKey: String, caCertificate: String, revocationList: String?, database: String,
        site: SiteConfiguration
    ) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.caCertificate = caCertificate
        self.revocationList = revocationList
        self.database = database
        self.site = site
    }
}
