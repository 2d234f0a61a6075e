import BackupCore
import Foundation

/// The site configuration the coordinator's parts read, shared by all of them and replaced as
/// a whole by a reload (SIGHUP, ``Coordinator/reload(_:)``): a look, a request or a run step
/// reads the site once and works with that value, so no part sees half of an old and half of
/// a new file.
public struct SiteSource: Sendable {
    private let box: LockedBox<SiteConfiguration>

    public init(_ site: SiteConfiguration) { box = LockedBox(site) }

    /// The site as it is now.
    public var current: SiteConfiguration { box.withLock { $0 } }

    func replace(with site: SiteConfiguration) { box.withLock { $0 = site } }
}
