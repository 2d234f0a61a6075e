import BackupClient
import Foundation
import Logging
import Testing

@testable import BackupAgent

/// An agent reads lease expiries, stamped by the hub's clock, with the offset it measured at
/// registration and heartbeats (issue 11, V10): an agent clock 60 s behind the hub's does not
/// take a 30 s lease for a 90 s one and renew too late, nor one 60 s ahead for an expired one.
struct HubClockTests {
    @Test func leaseExpiriesAreReadOnTheHubsClock() {
        let service = AgentService(
            configuration: AgentConfiguration(
                coordinator: CoordinatorEndpoint(
                    url: "https://127.0.0.1:1", certificate: "/none", privateKey: "/none", caCertificate: "/none"),
                storePath: "/none", storeID: "none", node: "srv1"),
            logger: Logger(label: "test"), dataPortFile: nil, dataPortState: DataPortState(), announcement: nil)
        // The hub's clock runs 60 s ahead: its expiry 30 s from its now is 90 s from ours.
        let hubNow = Date().addingTimeInterval(60)
        service.hubOffset.withLock { $0 = 60 }
        let left = service.secondsLeft(hubNow.addingTimeInterval(30))
        #expect(abs(left - 29) < 0.5, "\(left)")
        // And 60 s behind: the same lease is not taken as already gone.
        service.hubOffset.withLock { $0 = -60 }
        let behind = service.secondsLeft(Date().addingTimeInterval(-60 + 30))
        #expect(abs(behind - 29) < 0.5, "\(behind)")
        // Without an offset, the expiry as it is.
        service.hubOffset.withLock { $0 = 0 }
        #expect(abs(service.secondsLeft(Date().addingTimeInterval(30)) - 29) < 0.5)
    }
}
