import BackupCore

/// The coordinator service: site configuration, catalog, scheduler, leases, alerts, web.
///
/// It arrives with the control plane; its catalog records the `DNA` of every artifact that
/// `BackupCore` makes.
public enum CoordinatorRole {
    /// The identity record the catalog keeps for each artifact.
    public typealias ArtifactIdentity = DNA
}
