import ArgumentParser
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--log-level` of the service commands, over the level their configuration file sets.
struct LogLevelOption: ParsableArguments {
    @Option(
        name: .customLong("log-level"),
        help:
            "The least severe level logged: trace, debug, info, notice, warning, error or critical (overrides log_level)."
    )
    var level: Logger.Level?

    /// Sends every logger of the process to standard error at `level`, else at `configured`.
    /// Called once, before any logger is made.
    func bootstrap(configured: Logger.Level) {
        let chosen = level ?? configured
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = chosen
            return handler
        }
    }
}
