/// Why a configuration could not be assembled: bad command line, unreadable or malformed file, or a value that
/// fails validation.
///
/// Executables turn these into `error: …` on stderr and exit status 64 (see
/// `CommandLineParser.exitOnUsageError(usage:_:)`).
package enum ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The command line is wrong: unknown flag, missing value, value of the wrong type.
    case usage(String)
    /// `-h` or `--help` was given; the caller prints the usage text and exits 0.
    case helpRequested
    /// `--version` was given; the caller prints this description (`porthole-agent 0.1.0`) and exits 0.
    case versionRequested(command: String)
    /// A file (config or services) could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not JSON: `line` and `column` (from 1) say where it goes wrong.
    case syntax(path: String, line: Int, column: Int, reason: String)
    /// A file has a value of the wrong type, a field this version does not know, or a value that fails validation.
    case malformedFile(path: String, reason: String)
    /// A value is well-formed but not acceptable; `field` is the JSON field path, e.g. `pingTimeoutSeconds`
    /// or `services[2].url`.
    case invalid(field: String, reason: String)

    /// The exit status for an error that stopped start-up: 64 when a file the user named is wrong or unreadable
    /// (configuration, services, certificate, key, kubeconfig), as for a bad flag; 1 for anything else.
    package static func exitStatus(forStartupError error: any Error) -> Int32 {
        switch error {
        case is ConfigurationError, is any UserFileError: 64
        default: 1
        }
    }

    /// One line, without the `error:` prefix.
    package var description: String {
        switch self {
        case .usage(let message): message
        case .helpRequested: "help requested"
        case .versionRequested(let command): "\(command) \(portholeVersion)"
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .syntax(let path, let line, let column, let reason): "\(path):\(line):\(column): \(reason)"
        case .malformedFile(let path, let reason): "\(path): \(reason)"
        case .invalid(let field, let reason): "\(field): \(reason)"
        }
    }
}
