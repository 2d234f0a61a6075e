/// What a certificate's holder may do. The role is carried in the certificate (its
/// organizational unit), never claimed in a message.
public enum NodeRole: String, Codable, Sendable, CaseIterable {
    /// An agent on a server or backup node: client of the coordinator, server of its data port.
    case agent
    /// The coordinator on the hub.
    case coordinator
    /// A read-only operator: status and listings.
    case `operator`
    /// An administrating operator: may also submit work.
    case admin

    /// Whether certificates of this role also serve TLS (agents' data ports, the coordinator).
    public var isServer: Bool { self == .agent || self == .coordinator }
}
