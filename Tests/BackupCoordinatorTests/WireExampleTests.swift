import BackupProtocol
import BackupTesting
import Foundation
import Testing

/// Every example message in Protocol/examples/v1 decodes into its type and re-encodes to the
/// same JSON value, so the documents and the code cannot drift apart.
struct WireExampleTests {
    static let cases: [(String, any (Codable & Sendable).Type)] = [
        ("register-request", RegisterRequest.self), ("register-response", RegisterResponse.self),
        ("heartbeat-request", HeartbeatRequest.self), ("nodes-response", [NodeStatus].self),
        ("submit-task-request", SubmitTaskRequest.self), ("task", TaskInfo.self), ("lease-request", LeaseRequest.self),
        ("lease-response", LeaseResponse.self), ("lease-response-empty", LeaseResponse.self),
        ("renew-request", RenewRequest.self),
        ("result-request", ResultRequest.self), ("result-request-failure", ResultRequest.self),
        ("handback-request", HandBackRequest.self), ("error-response", ErrorResponse.self),
        ("result-request-purge", ResultRequest.self), ("submit-purge-request", SubmitTaskRequest.self),
        ("artifacts-response", [ArtifactInfo].self), ("transfer-request", TransferRequest.self),
        ("transfer-plan", TransferPlan.self), ("lease-response-transfer", LeaseResponse.self),
        ("ticket-payload", TransferTicket.self), ("receive-result", ReceiveResult.self),
        ("copies-report", ArtifactReport.self), ("purge-order-payload", PurgeOrder.self),
        ("artifact-receipt", ArtifactReceipt.self), ("hub-snapshot-manifest", HubSnapshotManifest.self),
        ("cancel-task-request", CancelTaskRequest.self),
        ("events-response", [EventInfo].self), ("schedules-response", [ScheduleInfo].self),
        ("start-run-request", StartRunRequest.self), ("run", RunInfo.self), ("runs-response", [RunInfo].self),
        ("status-response", SiteStatus.self), ("check-response", [CheckEntry].self),
        ("purge-plan", PurgePlan.self), ("purge-switch-request", PurgeSwitchRequest.self),
        ("purge-pauses-response", [PurgePause].self), ("purge-apply-request", PurgeApplyRequest.self),
        ("purge-release-request", PurgeReleaseRequest.self), ("purge-release-response", PurgeReleaseResponse.self),
        ("trash-request", TrashRequest.self), ("recover-request", RecoverRequest.self),
        ("task-recover", TaskInfo.self), ("recover-preview-sealed", SealedPreview.self),
        ("folder-preview", FolderPreview.self), ("fallback-plan", FallbackPlan.self),
        ("fallback-report", FallbackReport.self), ("fallback-answer", FallbackAnswer.self),
        ("alerts-response", [AlertInfo].self), ("silence-request", SilenceRequest.self),
        ("source-page", SourcePage.self), ("node-page", NodePage.self),
    ]

    @Test func everyExampleIsCovered() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Paths.protocolFolder + "/examples/v1")
        #expect(Set(files) == Set(Self.cases.map { $0.0 + ".json" }))
    }

    @Test(arguments: cases.map(\.0))
    func exampleRoundTrips(_ name: String) throws {
        let type = Self.cases.first { $0.0 == name }!.1
        let data = try Data(contentsOf: URL(fileURLWithPath: Paths.protocolFolder + "/examples/v1/\(name).json"))
        let value = try WireJSON.decoder().decode(type, from: data)
        let again = try WireJSON.encoder().encode(value)
        let original = try JSONSerialization.jsonObject(with: data) as? NSObject
        let reencoded = try JSONSerialization.jsonObject(with: again) as? NSObject
        #expect(original == reencoded, "\(name): \(String(decoding: again, as: UTF8.self))")
    }
}
