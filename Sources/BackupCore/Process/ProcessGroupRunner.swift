import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a command run by ``ProcessGroupRunner`` did.
public struct GroupRunOutcome: Sendable, Equatable {
    /// The exit status, or 128 + the signal that ended it.
    public var status: Int32
    /// Standard output and standard error together, at most the cap's bytes (the rest dropped).
    public var output: [UInt8]
    /// More was printed than the cap kept.
    public var truncated: Bool
    /// The command ran past its timeout and its process group was killed.
    public var timedOut: Bool
    /// Wall time from start to exit.
    public var seconds: Double
    /// The last lines of the output, for an error message.
    public var tail: String {
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.split(separator: "\n").suffix(5).joined(separator: " / ")
    }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29 and later), which Swift's Glibc module
/// does not import. Without it no command runs, rather than in the wrong folder.
private func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
    typealias Function =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    guard let function = CLibrary.function("posix_spawn_file_actions_addchdir_np", as: Function.self) else {
        return ENOSYS
    }
    return path.withCString { function(actions, $0) }
}

/// Runs a command without a shell in a process group of its own, with a given environment
/// (nothing inherited), working folder and timeout. At the timeout, or when the work it runs
/// for is cancelled (``WorkCancellation``), the whole group gets SIGTERM, then SIGKILL 5 seconds
/// later, so that nothing it started outlives it.
public enum ProcessGroupRunner {
    /// The environment of a notice command (sendmail and the like): a plain PATH and UTF-8.
    public static let noticeEnvironment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]

    /// Runs a notice command (`argv`, without a shell) with `message` on its standard input and
    /// at most `timeout` seconds (30); its failure described, or nil.
    public static func deliver(_ message: [UInt8], through argv: [String], timeout: Double = 30) -> String? {
        do {
            let outcome = try run(argv, environment: noticeEnvironment, timeout: timeout, input: message)
            if outcome.timedOut { return "'\(argv[0])' took more than \(Int(timeout)) s and was stopped" }
            guard outcome.status == 0 else { return "'\(argv[0])' exited with \(outcome.status): \(outcome.tail)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The default cap on the output kept: 64 KiB.
    public static let defaultOutputCap = 64 << 10

    /// Runs `argv` (an absolute program path and its arguments) and waits for it. `input` is
    /// its standard input (else /dev/null), handed over as a private temporary file that is
    /// unlinked as soon as the command has it open, so a command that never reads it cannot
    /// block the caller.
    public static func run(
        _ argv: [String], environment: [String: String], directory: String = "/", timeout: Double,
        outputCap: Int = defaultOutputCap, input: [UInt8]? = nil
    ) throws -> GroupRunOutcome {
        guard let program = argv.first, program.hasPrefix("/") else {
            throw BackupError(
                .invalidArgument, "A command must start with an absolute program path, not '\(argv.first ?? "")'.")
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            throw BackupError(.io, "Cannot make a pipe for '\(program)': \(String(cString: strerror(errno))).")
        }
        let (readEnd, writeEnd) = (pipeFDs[0], pipeFDs[1])
        defer { close(readEnd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inputFile: String?
        if let input {
            let path = (NSTemporaryDirectory() as NSString).appendingPathComponent(
                "scm-backup-stdin-\(UUID().uuidString.prefix(12).lowercased())")
            try FileSystem.writeAtomically(input, to: path, mode: 0o600)
            inputFile = path
        }
        defer {
            // Unlinked after the spawn already; this is for a spawn that failed.
            if let inputFile { unlink(inputFile) }
        }
        posix_spawn_file_actions_addopen(&actions, 0, inputFile ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        guard addChdir(&actions, directory) == 0 else {
            throw BackupError(.io, "Cannot set the working folder '\(directory)' for '\(program)'.")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let started = Date()
        var pid: pid_t = 0
        // Checked here as well: through the parent-death helper a missing program would only
        // show as its exit status 127.
        guard access(program, X_OK) == 0 else {
            throw BackupError(
                errno == ENOENT || errno == EACCES ? .toolMissing : .toolFailed,
                "Cannot start '\(program)': \(String(cString: strerror(errno))).")
        }
        let (executable, spawnArgs) = ParentDeath.command(program, Array(argv.dropFirst()))
        let cArgs = ([executable] + spawnArgs).map { strdup($0) } + [nil]
        let cEnv = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, cArgs, cEnv)
        close(writeEnd)
        if let inputFile { unlink(inputFile) }
        guard spawned == 0 else {
            throw BackupError(
                spawned == ENOENT || spawned == EACCES ? .toolMissing : .toolFailed,
                "Cannot start '\(program)': \(String(cString: strerror(spawned))).")
        }
        // The work's cancellation (a lost lease, a task past its max_duration) ends the group as
        // the timeout does, so a hung step never outlives its task.
        let cancellation = WorkCancellation.current
        cancellation?.register(group: pid)
        defer { cancellation?.unregister(group: pid) }

        var output: [UInt8] = []
        var truncated = false
        var timedOut = false
        var open = true
        var exitStatus: Int32?
        var killedAt: Date?
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let deadline = started.addingTimeInterval(timeout)
        while open || exitStatus == nil {
            if open {
                var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 100) > 0 {
                    let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        let room = max(0, outputCap - output.count)
                        output += buffer[0..<min(n, room)]
                        if n > room { truncated = true }
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        open = false
                    }
                }
            } else {
                usleep(50_000)
            }
            if exitStatus == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    let signal = status & 0x7f
                    exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
                    // Whatever it left running in its group goes with it.
                    kill(-pid, SIGKILL)
                }
            }
            let now = Date()
            if now > deadline, exitStatus == nil || open {
                if killedAt == nil {
                    timedOut = exitStatus == nil
                    kill(-pid, SIGTERM)
                    killedAt = now
                } else if now.timeIntervalSince(killedAt!) > 5 {
                    kill(-pid, SIGKILL)
                    if exitStatus != nil { open = false }  // A straggler keeps the pipe: stop reading.
                }
            }
        }
        return GroupRunOutcome(
            status: exitStatus ?? -1, output: output, truncated: truncated, timedOut: timedOut,
            seconds: Date().timeIntervalSince(started))
    }
}
