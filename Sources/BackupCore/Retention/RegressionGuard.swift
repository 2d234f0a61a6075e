/// Flags a new artifact whose source went backwards against the previous artifact of the same
/// source: an svn revision lower than before, a changed repository UUID, or a tar stream that
/// shrank to under half of the previous one (when that was at least 64 KiB).
///
/// A flagged artifact is still published (it may be the only copy of what is there now), but
/// it is marked in its DNA and listings, and retention never lets it push out good history.
public enum RegressionGuard {
    /// A tar stream smaller than this fraction of the previous one has collapsed.
    public static let collapseRatio = 0.5
    /// Sources smaller than this are not judged by size.
    public static let collapseFloor: Int64 = 64 * 1024

    /// The reasons `new` looks like a regression of `previous`; empty when it does not.
    public static func regressions(of new: DNA, after previous: DNA?) -> [String] {
        guard let previous else { return [] }
        var out: [String] = []
        if new.kind == SourceKind.svn.rawValue, let a = previous.revision.flatMap({ Int($0) }),
            let b = new.revision.flatMap({ Int($0) }), b < a
        {
            out.append("revision went backwards from \(a) to \(b)")
        }
        if let a = previous.identity, let b = new.identity, a != b {
            out.append("repository UUID changed from \(a) to \(b)")
        }
        if let a = previous.tarSize, let b = new.tarSize, a >= collapseFloor, Double(b) < Double(a) * collapseRatio {
            out.append("size collapsed from \(a) to \(b) bytes")
        }
        return out
    }
}
