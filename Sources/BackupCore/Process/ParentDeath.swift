import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Makes the tools an agent runs die with it (issue 11, W14: `svnadmin hotcopy` went on
/// writing into the staging folder of an agent that had been SIGKILLed).
///
/// Neither `posix_spawn` nor Foundation's `Process` can set a parent-death signal, so a tool
/// is started through the agent's own executable: `scm-backup __exec-tool PARENT PROGRAM ARGS…`
/// asks the kernel for SIGKILL when its parent goes (`PR_SET_PDEATHSIG`), checks that the
/// parent is still `PARENT` (it may have died before the request), and replaces itself with
/// the program, which keeps the request (it is kept across `execve`, except for set-user-ID
/// programs). The signal follows the thread that spawned the tool; ours spawn and then wait
/// for the tool on that same thread, so it cannot end first. Only a long-running service turns
/// this on (``enable(helper:)``); commands and tests run tools directly.
public enum ParentDeath {
    /// The hidden first argument of the helper mode.
    public static let execToolArgument = "__exec-tool"

    private static let helper = LockedBox<String?>(nil)
    /// `PR_SET_PDEATHSIG` of `<linux/prctl.h>`, which the Glibc module does not import.
    private static let setDeathSignal: Int32 = 1

    /// Starts every later tool through `helper`: by default the running executable, by its
    /// real path (so that the dynamic loader's `$ORIGIN` is its folder, not `/proc/self`).
    /// Throws, naming `/proc/self/exe`, when that path cannot be read: the tools then run
    /// directly, without the signal, and the caller says so.
    public static func enable(helper path: String? = nil) throws {
        let resolved: String
        if let path {
            resolved = path
        } else {
            do { resolved = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") } catch {
                throw BackupError(
                    .io,
                    "Cannot read '/proc/self/exe' (\(error)), so the tools this agent starts will not die with it if it is killed."
                )
            }
        }
        helper.withLock { $0 = resolved }
    }

    /// The executable and arguments that run `program` with `arguments`: through the helper
    /// once enabled (where the system has `prctl`), directly otherwise.
    public static func command(_ program: String, _ arguments: [String]) -> (String, [String]) {
        guard let path = helper.withLock({ $0 }), prctl != nil else { return (program, arguments) }
        return (path, [execToolArgument, String(getpid()), program] + arguments)
    }

    /// The helper mode: `arguments` are PARENT PROGRAM ARGS…. Never returns: it becomes the
    /// program, or exits with 127 naming why it could not.
    public static func execTool(_ arguments: [String]) -> Never {
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("scm-backup \(execToolArgument): \(message)\n".utf8))
            exit(127)
        }
        guard arguments.count >= 2, let parent = Int32(arguments[0]) else {
            fail("usage: \(execToolArgument) PARENT-PID PROGRAM [ARGUMENT...]")
        }
        guard let prctl, prctl(Self.setDeathSignal, UInt(SIGKILL), 0, 0, 0) == 0 else {
            fail("cannot ask for a parent-death signal: \(String(cString: strerror(errno)))")
        }
        // The parent died before the request took effect: the tool must not start at all.
        guard getppid() == parent else { fail("the agent that started this tool is gone") }
        let program = arguments[1]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.dropFirst(1).map { strdup($0) }
        argv.append(nil)
        execv(program, &argv)
        fail("cannot run '\(program)': \(String(cString: strerror(errno)))")
    }

    /// glibc's `prctl`, which Swift cannot call directly (it is variadic); every argument here
    /// is an integer, passed in integer registers as the variadic convention does.
    private static let prctl = CLibrary.function(
        "prctl", as: (@convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32).self)
}
