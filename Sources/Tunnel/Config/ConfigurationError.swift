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
    /// A file (config or services) could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not valid JSON, has a value of the wrong type, or a field this version does not know.
    case malformedFile(path: String, reason: String)
    /// A value is well-formed but not acceptable; `field` is the JSON field path, e.g. `pingTimeoutSeconds`
    /// or `services[2].url`.
    case invalid(field: String, reason: String)

    /// One line, without the `error:` prefix.
    package var description: String {
        switch self {
        case .usage(let message): message
        case .helpRequested: "help requested"
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .malformedFile(let path, let reason): "\(path): \(reason)"
        case .invalid(let field, let reason): "\(field): \(reason)"
        }
    }
}
