import BackupCore
import BackupProtocol
import Foundation
import Testing

@testable import BackupAgent

/// When an agent backs up or verifies on its own (issue 14, item 5): only the newest slot the
/// hub missed, only after `fallback_grace`, never when the hub answered since the slot, never a
/// slot it handled before; the nightly verify goes on where the last one stopped.
struct FallbackPlanTests {
    static let utc = TimeZone(identifier: "UTC")!
    static func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    static let plan = FallbackPlan(
        node: "srv1",
        entries: [
            .init(
                definition: SourceDefinition(name: "env", kind: .svn, path: "/var/scm/repos/env"), cron: "0 3 * * *",
                zone: "UTC", jitterSeconds: 30, lastSlot: at("2026-12-01T03:00:30Z"))
        ],
        verify: .init(windowStart: 60, zone: "UTC", budget: 100, lastWindow: at("2026-12-01T01:00:00Z")))

    @Test func onlyTheNewestMissedSlotRunsAfterTheGraceAndOnlyWithoutTheHub() throws {
        let state = FallbackKeeper.State()
        func due(_ now: String, contact: String?) throws -> [Date] {
            try FallbackKeeper.due(
                Self.plan, state: state, lastContact: contact.map(Self.at), now: Self.at(now), grace: 60,
                since: Self.at("2026-11-30T00:00:00Z")
            ).map(\.slot)
        }
        // Three nights later, the hub away since the first: the newest slot only, with its jitter.
        #expect(try due("2026-12-04T04:00:00Z", contact: "2026-12-01T12:00:00Z") == [Self.at("2026-12-04T03:00:30Z")])
        // Within the grace after the next slot: not yet (the hub may still fire it).
        #expect(try due("2026-12-02T03:01:00Z", contact: "2026-12-01T12:00:00Z").isEmpty)
        #expect(try due("2026-12-02T03:01:31Z", contact: "2026-12-01T12:00:00Z") == [Self.at("2026-12-02T03:00:30Z")])
        // The hub answered after the slot: it is the hub's.
        #expect(try due("2026-12-04T04:00:00Z", contact: "2026-12-04T03:00:40Z").isEmpty)
        // Handled here already: not again.
        var handled = FallbackKeeper.State()
        handled.handled["env"] = Self.at("2026-12-04T03:00:30Z")
        #expect(
            try FallbackKeeper.due(
                Self.plan, state: handled, lastContact: nil, now: Self.at("2026-12-04T09:00:00Z"), grace: 60,
                since: Self.at("2026-11-30T00:00:00Z")
            ).isEmpty)
        // A plan damaged on disk is named, not silently never run.
        var damaged = Self.plan
        damaged.entries[0].cron = "61 * * * *"
        let error = #expect(throws: BackupError.self) {
            try FallbackKeeper.due(
                damaged, state: handled, lastContact: nil, now: Self.at("2026-12-04T09:00:00Z"), grace: 60,
                since: Self.at("2026-11-30T00:00:00Z"))
        }
        #expect(error?.message.contains("source 'env'") == true, "\(error?.message ?? "")")
        damaged = Self.plan
        damaged.verify?.zone = "Mars/Olympus"
        #expect(throws: BackupError.self) {
            try FallbackKeeper.verifyDue(
                damaged, state: handled, lastContact: nil, now: Self.at("2026-12-04T09:00:00Z"), grace: 60,
                since: .distantPast)
        }
    }

    @Test func theNightlyVerifyRunsOncePerWindowAndGoesOnWhereItStopped() throws {
        var state = FallbackKeeper.State()
        let window = try FallbackKeeper.verifyDue(
            Self.plan, state: state, lastContact: Self.at("2026-12-02T00:00:00Z"), now: Self.at("2026-12-03T05:00:00Z"),
            grace: 60, since: .distantPast)
        #expect(window == Self.at("2026-12-03T01:00:00Z"))
        state.verifiedWindow = window
        #expect(
            try FallbackKeeper.verifyDue(
                Self.plan, state: state, lastContact: nil, now: Self.at("2026-12-03T05:00:00Z"), grace: 60,
                since: .distantPast) == nil)
        let artifacts = ["a", "b", "c", "d"].map { name in
            StoredArtifact(
                path: "/s/srv1/svn/\(name)/2026/12/01/030000/\(name).tar.gz",
                location: ArtifactLocation(
                    origin: "srv1", kind: "svn", source: name, stamp: "2026/12/01/030000", fileName: "\(name).tar.gz"),
                size: 40, hasSidecar: true)
        }
        let first = FallbackKeeper.verifyBatch(artifacts, after: nil, budget: 100)
        #expect(first.map { $0.location!.source } == ["a", "b"])
        let next = FallbackKeeper.verifyBatch(artifacts, after: first.last!.location!.relativePath, budget: 100)
        #expect(next.map { $0.location!.source } == ["c", "d"])
        let wrapped = FallbackKeeper.verifyBatch(artifacts, after: next.last!.location!.relativePath, budget: 100)
        #expect(wrapped.map { $0.location!.source } == ["a", "b"])
    }
}
