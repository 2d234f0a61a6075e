import BackupCore
import BackupProtocol
import Foundation

/// The purge stage's decision for one node, as a pure function of what the catalog holds
/// (``PurgeStage`` gathers the facts and queues the order). The retention of each source
/// (``SiteConfiguration/retention(origin:source:holder:)``) picks the copies to delete; then
/// nothing is ordered deleted that is:
///
/// 1. the newest verified copy of its source on this node, or on any node;
/// 2. a copy of an artifact with fewer than `copies` verified copies on backup nodes paired
///    with its origin, counting only copies whose verification or listing the catalog recorded
///    within `purge_evidence_age` (unless the artifact is older than
///    `allow_unreplicated_purge_after`): nothing goes anywhere before it is replicated enough.
///    Once it was (``ArtifactInfo/replicatedAt``), each node's policy may drop it in turn (a
///    backup node keeping longer than another is not held for ever by the other's purge),
///    unless a paired backup node's copy is owed a repair (bad or missing): then it holds again;
/// 3. read by a queued or running transfer or verify;
/// 4. flagged as a regression, or of a source whose newest backup is flagged (the whole source
///    holds until `purge release`);
/// 5. failed verification (kept for quarantine and repair) or missing.
///
/// Ages and buckets count from each artifact's creation on its origin; svn artifacts are
/// ordered by revision, others by the hub's arrival time (``RetentionPolicy/newestFirst(_:)``).
enum PurgePlanner {
    struct Facts: Sendable {
        var node: String
        /// Every artifact (with its copies) of every source that has a copy on the node.
        var artifacts: [ArtifactInfo]
        /// Copies on the node that queued or running tasks read, with what reads them.
        var reads: [String: String] = [:]
        /// Per `origin/source`, the id of the flagged artifact a `purge release` accepted: it
        /// and every older flag count as good.
        var released: [String: Int64] = [:]
        /// The pause switches that are on.
        var pauses: [PurgePause] = []
        /// The node's quarantined mutants, as its last inventory listed them.
        var quarantine: [QuarantineEntry] = []
        var now: Date
    }

    static func plan(_ facts: Facts, site: SiteConfiguration) -> PurgePlan {
        let node = facts.node
        let now = facts.now
        let maxAge = site.verify.maxAge
        let rules = site.purge
        var plan = PurgePlan(node: node, at: now)
        if let pause = facts.pauses.first(where: { $0.node == nil }) ?? facts.pauses.first(where: { $0.node == node }) {
            plan.paused =
                "purging is paused \(pause.node.map { "on \($0)" } ?? "site-wide") by \(pause.by) since \(WireJSON.format(pause.at))"
                + (pause.reason.map { ": \($0)" } ?? "")
        }
        var heldBack: [String: (count: Int, example: String)] = [:]
        let groups = Dictionary(grouping: facts.artifacts, by: { "\($0.origin)/\($0.source)" })
        for key in groups.keys.sorted() {
            let all = groups[key]!
            let origin = all[0].origin
            let source = all[0].source
            let releasedId = facts.released[key]
            func flagged(_ a: ArtifactInfo) -> Bool {
                guard let flags = a.regressions, !flags.isEmpty else { return false }
                guard let releasedId, let id = a.id else { return true }
                return id > releasedId
            }
            let byId = Dictionary(all.map { (label($0), $0) }, uniquingKeysWith: { a, _ in a })
            let ordered = RetentionPolicy.newestFirst(all.map { candidate($0, flagged: flagged($0)) }).map {
                byId[$0.id]!
            }
            var hold: String?
            if let newest = latest(all), flagged(newest) {
                hold =
                    "purging of \(key) holds: its newest backup \(newest.stamp) is flagged (\((newest.regressions ?? []).joined(separator: "; "))); 'scm-backup purge release --source \(source) --origin \(origin)' accepts it as the new baseline"
                plan.holds.append(hold!)
            }
            let newestVerifiedAnywhere = ordered.first { a in
                a.copies.contains { Standing.isVerified($0, now: now, maxAge: maxAge) }
            }
            let here = ordered.compactMap { a in a.copies.first { $0.node == node }.map { (a, $0) } }
            let newestVerifiedHere = here.first { Standing.isVerified($0.1, now: now, maxAge: maxAge) }?.0
            let orphan = !site.holds(origin: origin, holder: node)
            let policy = site.retention(origin: origin, source: source, holder: node)
            let eligible = here.filter { !$0.1.state.failedVerification && $0.1.state != .missing }
            var decided: [String: RetentionPolicy.Decision] = [:]
            if let policy {
                for d in policy.decide(eligible.map { candidate($0.0, flagged: flagged($0.0)) }) { decided[d.id] = d }
            }
            let wanted = site.copiesWanted(node: origin, source: source)
            let receivers = site.receivers(of: origin)
            for (artifact, copy) in here {
                var entry = PurgePlan.Entry(
                    path: copy.path, origin: origin, source: source, delete: false, reasons: [],
                    orphan: orphan ? true : nil)
                defer { plan.copies.append(entry) }
                if copy.state.failedVerification {
                    entry.reasons = ["its copy is \(copy.state.rawValue): kept for quarantine and repair"]
                    continue
                }
                if copy.state == .missing {
                    entry.reasons = ["missing from the node's listing: nothing to delete"]
                    continue
                }
                guard policy != nil, let decision = decided[label(artifact)] else {
                    entry.reasons = ["no retention applies to \(key) on \(node): everything is kept"]
                    continue
                }
                if decision.keep {
                    entry.reasons = decision.reasons.map { "retention: \($0)" }
                    continue
                }
                var keep: [String] = []
                if label(artifact) == newestVerifiedHere.map(label) {
                    keep.append("the newest verified copy of \(key) on \(node)")
                } else if label(artifact) == newestVerifiedAnywhere.map(label) {
                    keep.append("the newest verified artifact of \(key) on any node")
                }
                let fresh = freshCopies(artifact, site: site, now: now)
                let age = now.timeIntervalSince(artifact.created ?? artifact.firstSeenAt ?? now)
                let unreplicatedMayGo = rules.allowUnreplicatedAfter.map { age > $0 } ?? false
                let owedRepair = artifact.copies.contains { c in
                    c.node != origin && site.holds(origin: origin, holder: c.node) && c.state.isBad
                }
                let wasReplicated = artifact.replicatedAt != nil && !owedRepair
                if fresh.count < wanted && !unreplicatedMayGo && !wasReplicated {
                    let lacking = receivers.filter { r in !fresh.contains { $0.node == r } }.map { r in
                        (r, lack(artifact.copies.first { $0.node == r }, now: now, maxAge: maxAge, rules: rules))
                    }
                    for (r, why) in lacking where heldBack[r] == nil {
                        heldBack[r] = (0, "\(key) \(artifact.stamp): \(why)")
                    }
                    for (r, _) in lacking { heldBack[r]!.count += 1 }
                    keep.append(
                        "only \(fresh.count) of \(wanted) verified copies on backup nodes with evidence within \(RetentionPolicy.describe(rules.evidenceAge)); held back by "
                            + lacking.map { "\($0.0) (\($0.1))" }.joined(separator: ", "))
                }
                if let reader = facts.reads[copy.path] ?? facts.reads["*"] { keep.append("read by \(reader)") }
                if let hold { keep.append(hold) }
                if keep.isEmpty {
                    entry.delete = true
                    entry.reasons = ["not kept by the retention of \(key) on \(node)"]
                } else {
                    entry.reasons = keep
                }
            }
        }
        plan.quarantine = quarantineDecisions(facts, site: site)
        plan.heldBackBy = heldBack.keys.sorted().map { r in
            "\(r): lacks fresh verified copies of \(heldBack[r]!.count) (e.g. \(heldBack[r]!.example))"
        }
        return plan
    }

    /// Each quarantined mutant goes `quarantine_days` after it was set aside, once the copy it
    /// was has been verified intact on the node since (its repair); else it stays, saying why.
    static func quarantineDecisions(_ facts: Facts, site: SiteConfiguration) -> [PurgePlan.Entry]? {
        guard !facts.quarantine.isEmpty else { return nil }
        let days = Double(site.purge.quarantineDays)
        var copies: [String: CopyInfo] = [:]
        var owners: [String: ArtifactInfo] = [:]
        for a in facts.artifacts {
            for c in a.copies where c.node == facts.node {
                copies[c.path] = c
                owners[c.path] = a
            }
        }
        return facts.quarantine.map { q in
            let owner = owners[q.artifactPath]
            var entry = PurgePlan.Entry(
                path: q.path, origin: owner?.origin ?? "?", source: owner?.source ?? "?", delete: false, reasons: [])
            let age = facts.now.timeIntervalSince(q.quarantinedAt)
            guard let copy = copies[q.artifactPath], copy.state == .intact, let verified = copy.verifiedAt,
                verified > q.quarantinedAt
            else {
                entry.reasons = [
                    "its artifact \(q.artifactPath) is not verified intact here since: kept until it is repaired"
                ]
                return entry
            }
            if age < days * 86_400 {
                entry.reasons = [
                    "repaired; kept for quarantine_days (\(site.purge.quarantineDays)) after it was set aside on \(WireJSON.format(q.quarantinedAt))"
                ]
            } else {
                entry.delete = true
                entry.reasons = ["repaired and set aside over quarantine_days (\(site.purge.quarantineDays)) ago"]
            }
            return entry
        }
    }

    /// The copies of `artifact` that count toward `copies`: verified, on a backup node paired
    /// with its origin, and listed or verified within `purge_evidence_age`.
    static func freshCopies(_ artifact: ArtifactInfo, site: SiteConfiguration, now: Date) -> [CopyInfo] {
        artifact.copies.filter { c in
            c.node != artifact.origin && site.holds(origin: artifact.origin, holder: c.node)
                && Standing.isVerified(c, now: now, maxAge: site.verify.maxAge)
                && now.timeIntervalSince(max(c.seenAt, c.verifiedAt ?? c.seenAt)) <= site.purge.evidenceAge
        }
    }

    /// The artifacts that have their `copies` now and were not yet recorded as replicated.
    static func newlyReplicated(_ facts: Facts, site: SiteConfiguration) -> [Int64] {
        facts.artifacts.compactMap { a in
            guard a.replicatedAt == nil, let id = a.id else { return nil }
            let wanted = site.copiesWanted(node: a.origin, source: a.source)
            return freshCopies(a, site: site, now: facts.now).count >= wanted ? id : nil
        }
    }

    /// What a backup node's copy lacks to count toward `copies`.
    static func lack(_ copy: CopyInfo?, now: Date, maxAge: TimeInterval, rules: SiteConfiguration.PurgeRules)
        -> String
    {
        guard let copy else { return "no copy" }
        guard copy.state == .intact else { return "its copy is \(copy.state.rawValue)" }
        guard Standing.isVerified(copy, now: now, maxAge: maxAge) else { return "its copy is not verified" }
        return
            "its copy was last seen \(WireJSON.format(max(copy.seenAt, copy.verifiedAt ?? copy.seenAt))): evidence older than purge_evidence_age"
    }

    /// The source's latest backup by when it was made, not by revision: a repository whose
    /// revision went backwards made its newest backup with the lower one.
    static func latest(_ artifacts: [ArtifactInfo]) -> ArtifactInfo? {
        artifacts.max { a, b in
            let (x, y) = (a.firstSeenAt ?? a.created ?? .distantPast, b.firstSeenAt ?? b.created ?? .distantPast)
            return x != y ? x < y : a.stamp < b.stamp
        }
    }

    /// An artifact's name within its source (stamp and file), unique among the source's.
    static func label(_ a: ArtifactInfo) -> String { a.stamp + "/" + a.fileName }

    static func candidate(_ a: ArtifactInfo, flagged: Bool) -> RetentionPolicy.Candidate {
        let isSvn = SourceKind(storeName: a.kind) == .svn
        return RetentionPolicy.Candidate(
            id: label(a), created: a.created ?? a.firstSeenAt ?? .distantPast, isRegression: flagged,
            revision: isSvn ? a.revision.flatMap { Int($0) } : nil, arrivedAt: a.firstSeenAt)
    }
}
