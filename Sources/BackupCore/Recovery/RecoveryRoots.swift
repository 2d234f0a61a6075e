import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The folders a node lets a recovery through the site restore into (`recovery_roots` of its
/// `agent.toml`): the node's own decision, never the hub's. A target is inside a root when
/// its parent folder, with every symlink resolved, is the root or below it (resolved too), so
/// that a symlink planted inside a root cannot lead a recovery out of it.
public enum RecoveryRoots {
    /// The target as it will be written (`target` standardised), or `outside-recovery-roots`
    /// naming the target and the roots; checked before any byte moves.
    public static func check(_ target: String, roots: [String], node: String) throws -> String {
        guard !roots.isEmpty else {
            throw BackupError(
                .outsideRecoveryRoots,
                "Node '\(node)' has no recovery_roots in its agent.toml, so it restores nothing through the site; nothing was read or changed."
            )
        }
        guard target.hasPrefix("/"), !target.contains("\0"), !target.split(separator: "/").contains("..") else {
            throw BackupError(
                .outsideRecoveryRoots, "The recovery target '\(target)' is not an absolute path without '..'.")
        }
        let standard = (target as NSString).standardizingPath
        let parent = (standard as NSString).deletingLastPathComponent
        let name = (standard as NSString).lastPathComponent
        guard !name.isEmpty, name != "/", name != "." else {
            throw BackupError(.outsideRecoveryRoots, "The recovery target '\(target)' names no folder or file.")
        }
        guard let realParent = resolve(parent) else {
            throw BackupError(
                .invalidArgument,
                "The folder '\(parent)' to recover into does not exist on node '\(node)'; nothing was read or changed.")
        }
        for root in roots {
            guard let realRoot = resolve(root) else { continue }
            if realParent == realRoot || realParent.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") {
                return realParent + "/" + name
            }
        }
        throw BackupError(
            .outsideRecoveryRoots,
            "'\(target)' is outside the recovery_roots of node '\(node)' (\(roots.joined(separator: ", "))); nothing was read or changed."
        )
    }

    /// `path` with every symlink resolved, or nil when it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }
}
