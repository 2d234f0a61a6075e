/// The version of the agent–coordinator wire contract that this build speaks.
///
/// The contract itself (endpoints, messages, error codes) is specified in the top-level
/// `Protocol/` folder and arrives with the control plane; until then this module only fixes
/// the version prefix every endpoint will live under.
public enum WireVersion {
    /// The path prefix of every endpoint of this version, e.g. `/v1/tasks/lease`.
    public static let pathPrefix = "/v1"
}
