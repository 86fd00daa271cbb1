import Foundation

/// Parses `--flag value`, `--flag=value` and boolean `--flag` arguments against a list of declared options, and
/// writes the usage text from the same declarations.
///
/// Anything not declared is a usage error, as is a positional argument: every setting has a name.
package struct CommandLineParser: Sendable {
    /// One declared option.
    package struct Option: Sendable, Equatable {
        /// The flag, with its dashes: `--agent-listen`.
        package var name: String
        /// Placeholder for the value in the usage text (`HOST:PORT`); nil for a boolean flag.
        package var valueName: String?
        /// One line saying what it does.
        package var help: String
        /// The default as shown in the usage text, if any.
        package var defaultValue: String?
        /// Whether it may be given several times; otherwise a second occurrence is a usage error.
        package var isRepeatable: Bool

        /// An option that takes a value.
        package static func value(
            _ name: String, _ valueName: String, help: String, default defaultValue: String? = nil,
            repeatable: Bool = false
        ) -> Option {
            Option(name: name, valueName: valueName, help: help, defaultValue: defaultValue, isRepeatable: repeatable)
        }

        /// A boolean flag that takes no value.
        package static func flag(_ name: String, help: String) -> Option {
            Option(name: name, valueName: nil, help: help, defaultValue: nil, isRepeatable: false)
        }
    }

    /// What was given on one command line, by option name; read it with the typed accessors.
    package struct Arguments: Sendable, Equatable {
        /// Values in command-line order for each option given; a boolean flag maps to `[]`.
        package private(set) var values: [String: [String]] = [:]
        let declared: Set<String>

        init(declared: Set<String>) {
            self.declared = declared
        }

        mutating func append(_ value: String?, for name: String) {
            self.values[name, default: []].append(contentsOf: value.map { [$0] } ?? [])
        }

        private func given(_ name: String) -> [String]? {
            precondition(self.declared.contains(name), "option \(name) was not declared")
            return self.values[name]
        }

        /// Whether the option appeared at all.
        package func isPresent(_ name: String) -> Bool { self.given(name) != nil }

        /// The option's value, or nil if it was not given.
        package func string(_ name: String) -> String? { self.given(name)?.last }

        /// Every value of a repeatable option, in order; empty if not given.
        package func strings(_ name: String) -> [String] { self.given(name) ?? [] }

        /// The value as a finite number, e.g. seconds; nil if not given.
        package func double(_ name: String) throws -> Double? {
            guard let text = self.string(name) else { return nil }
            guard let value = Double(text), value.isFinite else {
                throw ConfigurationError.usage("\(name) expects a number, got \"\(text)\"")
            }
            return value
        }

        /// The value as an integer; nil if not given.
        package func int(_ name: String) throws -> Int? {
            guard let text = self.string(name) else { return nil }
            guard let value = Int(text) else {
                throw ConfigurationError.usage("\(name) expects a whole number, got \"\(text)\"")
            }
            return value
        }

        /// The value as `HOST:PORT`; nil if not given.
        package func listenAddress(_ name: String) throws -> ListenAddress? {
            guard let text = self.string(name) else { return nil }
            return try Self.usageError { try ListenAddress(parsing: text, field: name) }
        }

        /// Every value of a repeatable `HOST:PORT` option, in order.
        package func listenAddresses(_ name: String) throws -> [ListenAddress] {
            try self.strings(name).map { text in try Self.usageError { try ListenAddress(parsing: text, field: name) } }
        }

        /// Every `KEY=VALUE` of a repeatable option; a later key replaces an earlier one.
        package func keyValuePairs(_ name: String) throws -> [String: String] {
            var pairs: [String: String] = [:]
            for text in self.strings(name) {
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    throw ConfigurationError.usage("\(name) expects KEY=VALUE, got \"\(text)\"")
                }
                pairs[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            return pairs
        }

        private static func usageError<Value>(_ body: () throws -> Value) throws -> Value {
            do {
                return try body()
            } catch ConfigurationError.invalid(let field, let reason) {
                throw ConfigurationError.usage("\(field): \(reason)")
            }
        }
    }

    /// The executable's name in the usage text.
    package var command: String
    /// One or two sentences under the usage line.
    package var summary: String
    /// Declared options, in the order the usage text lists them.
    package var options: [Option]

    /// A parser for `command` accepting `options` (plus `-h`/`--help` and `--version`, always).
    package init(command: String, summary: String, options: [Option]) {
        precondition(Set(options.map(\.name)).count == options.count, "duplicate option")
        precondition(options.allSatisfy { $0.name.hasPrefix("--") && $0.name.count > 2 }, "options start with --")
        precondition(!options.contains { $0.name == "--version" || $0.name == "--help" }, "built-in option")
        self.command = command
        self.summary = summary
        self.options = options
    }

    /// Parses `arguments` (without the executable name).
    ///
    /// - Throws: `ConfigurationError.helpRequested` if `-h` or `--help` appears anywhere, then
    ///   `.versionRequested` if `--version` does, otherwise `ConfigurationError.usage` for an unknown option, a
    ///   missing value, a value given to a boolean flag, a non-repeatable option given twice, or a positional
    ///   argument.
    package func parse(_ arguments: [String]) throws -> Arguments {
        if arguments.contains(where: { $0 == "-h" || $0 == "--help" }) {
            throw ConfigurationError.helpRequested
        }
        if arguments.contains("--version") {
            throw ConfigurationError.versionRequested(command: self.command)
        }
        let byName = Dictionary(uniqueKeysWithValues: self.options.map { ($0.name, $0) })
        var result = Arguments(declared: Set(byName.keys))
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument.count > 1 else {
                throw ConfigurationError.usage("unexpected argument \"\(argument)\"; every setting is a --flag")
            }
            let name: String
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
            }
            guard let option = byName[name] else {
                throw ConfigurationError.usage("unknown option \(name)\(self.suggestion(for: name))")
            }
            if !option.isRepeatable, result.isPresent(name) {
                throw ConfigurationError.usage("\(name) given more than once")
            }
            guard let valueName = option.valueName else {
                if inlineValue != nil { throw ConfigurationError.usage("\(name) takes no value") }
                result.append(nil, for: name)
                continue
            }
            if inlineValue == nil, index < arguments.endIndex, !arguments[index].hasPrefix("--") {
                inlineValue = arguments[index]
                index += 1
            }
            guard let value = inlineValue else {
                throw ConfigurationError.usage("\(name) needs a value (\(name) \(valueName))")
            }
            result.append(value, for: name)
        }
        return result
    }

    private func suggestion(for name: String) -> String {
        let stem = name.drop(while: { $0 == "-" })
        let close = self.options.map(\.name).filter { candidate in
            let candidateStem = candidate.dropFirst(2)
            return !stem.isEmpty && (candidateStem.hasPrefix(stem) || stem.hasPrefix(candidateStem))
        }
        return close.isEmpty ? "" : " (did you mean \(close.joined(separator: " or "))?)"
    }

    /// The `--help` text: a usage line, the summary, then one line per option with its value, help and default.
    package var usage: String {
        var rows = self.options.map { option in
            var flag = option.name
            if let valueName = option.valueName { flag += " \(valueName)" }
            var notes: [String] = []
            if option.isRepeatable { notes.append("repeatable") }
            if let defaultValue = option.defaultValue { notes.append("default: \(defaultValue)") }
            return (flag, option.help, notes.isEmpty ? "" : "(\(notes.joined(separator: "; ")))")
        }
        rows.append(("-h, --help", "Show this help and exit.", ""))
        rows.append(("--version", "Print the version and exit.", ""))
        let width = min(rows.map(\.0.count).max() ?? 0, 32)
        let indent = String(repeating: " ", count: width + 4)
        let summary = Self.wrap(self.summary, width: 110).joined(separator: "\n")
        var text = "usage: \(self.command) [options]\n\n\(summary)\n\noptions:\n"
        for (flag, help, notes) in rows {
            let helpWidth = max(40, 110 - indent.count)
            var lines = Self.wrap(help, width: helpWidth)
            if !notes.isEmpty {
                if lines[lines.count - 1].count + 1 + notes.count <= helpWidth {
                    lines[lines.count - 1] += " \(notes)"
                } else {
                    lines.append(notes)
                }
            }
            if flag.count > width {
                text += "  \(flag)\n"
            } else {
                text += "  \(flag.padding(toLength: width, withPad: " ", startingAt: 0))  \(lines.removeFirst())\n"
            }
            for line in lines { text += "\(indent)\(line)\n" }
        }
        return text
    }

    /// Splits `text` into lines of at most `width` characters at spaces (a longer word gets its own line).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " \(word)"
        }
        return lines + [line]
    }

    /// Runs `body` (which loads a configuration) and returns its result; on `--help` prints `usage` (on
    /// `--version` the command and version) to stdout and exits 0, on a configuration error prints `error: …` to
    /// stderr and exits 64, and on any other error exits 1. Keeps every `main.swift` to one call.
    package static func exitOnUsageError<Value>(usage: String, _ body: () throws -> Value) -> Value {
        do {
            return try body()
        } catch {
            let outcome = Self.outcome(of: error, usage: usage)
            if !outcome.standardOutput.isEmpty { FileHandle.standardOutput.write(Data(outcome.standardOutput.utf8)) }
            if !outcome.standardError.isEmpty { FileHandle.standardError.write(Data(outcome.standardError.utf8)) }
            exit(outcome.status)
        }
    }

    /// What `exitOnUsageError` does for an error: exit status and what it writes where.
    struct Outcome: Equatable {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// What `exitOnUsageError` prints and its exit status for `error`; separate so tests can check it.
    static func outcome(of error: any Error, usage: String) -> Outcome {
        switch error {
        case ConfigurationError.helpRequested:
            return Outcome(status: 0, standardOutput: usage, standardError: "")
        case ConfigurationError.versionRequested:
            return Outcome(status: 0, standardOutput: "\(error)\n", standardError: "")
        case ConfigurationError.usage(let message):
            return Outcome(status: 64, standardOutput: "", standardError: "error: \(message)\n\n\(usage)")
        case let error as ConfigurationError:
            return Outcome(status: 64, standardOutput: "", standardError: "error: \(error)\n")
        default:
            return Outcome(status: 1, standardOutput: "", standardError: "error: \(error)\n")
        }
    }
}
