/// What the catalog (and an agent's report) says of one node's copy of an artifact. The raw
/// value is the wire's spelling; a new state takes a new API major.
///
/// The one set of bad states is ``isBad``; ``failedVerification`` and ``isUnfitToSend`` are
/// the parts of it the purge guard and the transfer planner ask about.
public enum CopyState: String, Codable, Sendable, CaseIterable {
    /// Its bytes match its DNA (verified, published by a backup, or received and checked).
    case intact
    /// Its bytes do not match its DNA (an agent found it; the file is moved aside).
    case mutant
    /// A mutant moved aside into the store's quarantine.
    case quarantined
    /// Its sidecar's digest or its size disagrees with the catalog's reference.
    case mismatch
    /// Listed, never verified (or not since it changed).
    case unverified
    /// The node no longer holds it.
    case missing
    /// No DNA sidecar beside it.
    case missingSidecar = "missing-sidecar"
    /// A sidecar that does not parse.
    case invalidSidecar = "invalid-sidecar"
    /// The artifact cannot be read.
    case unreadable

    /// Failed a verification or a digest comparison: kept for quarantine and repair, never
    /// purged.
    public var failedVerification: Bool { self == .mutant || self == .quarantined || self == .mismatch }

    /// Not to be sent to another node: failed verification, or cannot be verified.
    public var isUnfitToSend: Bool {
        failedVerification || self == .missingSidecar || self == .invalidSidecar || self == .unreadable
    }

    /// Any bad news of a copy: unfit to send, or gone. A report nobody asked for may set only
    /// these (it can only say a copy got worse).
    public var isBad: Bool { isUnfitToSend || self == .missing }
}
