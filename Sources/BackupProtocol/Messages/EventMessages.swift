import Foundation

/// `GET /v1/events` (operator, admin): one accepted admin request, as the coordinator recorded
/// it. Who made it comes from the certificate it was made with, never from the request.
public struct EventInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var at: Date
    /// The certificate's name, role and serial.
    public var actor: String
    public var role: String
    public var serial: String
    /// `<METHOD> <path>`.
    public var request: String
    /// What it did: the tasks it queued, the transfers it planned.
    public var detail: String

    public init(
        id: Int64, at: Date, actor: String, role: String, serial: String, request: String, detail: String
    ) {
        self.id = id
        self.at = at
        self.actor = actor
        self.role = role
        self.serial = serial
        self.request = request
        self.detail = detail
    }
}
