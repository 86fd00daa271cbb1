import Testing

@testable import Tunnel

@Suite struct CommandLineParserTests {
    let parser = CommandLineParser(
        command: "tool",
        summary: "Does a thing.",
        options: [
            .value("--listen", "HOST:PORT", help: "Where to listen.", default: ":8443"),
            .value("--name", "NAME", help: "A name.", repeatable: true),
            .value("--timeout", "SECONDS", help: "How long."),
            .value("--count", "N", help: "How many."),
            .value("--label", "KEY=VALUE", help: "A label.", repeatable: true),
            .flag("--force", help: "Overwrite."),
        ])

    @Test func acceptsSeparateAndInlineValues() throws {
        let arguments = try self.parser.parse(["--listen", "127.0.0.1:1", "--timeout=2.5", "--count=-3"])
        #expect(try arguments.listenAddress("--listen") == ListenAddress(host: "127.0.0.1", port: 1))
        #expect(try arguments.double("--timeout") == 2.5)
        #expect(try arguments.int("--count") == -3)
        #expect(arguments.isPresent("--force") == false)
        #expect(arguments.string("--name") == nil)
    }

    @Test func inlineValueMayContainEqualsAndBeEmpty() throws {
        let arguments = try self.parser.parse(["--label=a=b=c", "--name="])
        #expect(try arguments.keyValuePairs("--label") == ["a": "b=c"])
        #expect(arguments.strings("--name") == [""])
    }

    @Test func repeatableOptionsKeepOrder() throws {
        let arguments = try self.parser.parse(["--name", "a", "--name=b", "--force", "--name", "c"])
        #expect(arguments.strings("--name") == ["a", "b", "c"])
        #expect(arguments.string("--name") == "c")
        #expect(arguments.isPresent("--force"))
    }

    @Test func laterLabelReplacesEarlierKey() throws {
        let arguments = try self.parser.parse(["--label", "team=a", "--label", "team=b", "--label", "x="])
        #expect(try arguments.keyValuePairs("--label") == ["team": "b", "x": ""])
    }

    @Test(arguments: [
        (["--bogus"], "unknown option --bogus"),
        (["--time=3"], "unknown option --time (did you mean --timeout?)"),
        (["--listen"], "--listen needs a value (--listen HOST:PORT)"),
        (["--listen", "--force"], "--listen needs a value (--listen HOST:PORT)"),
        (["--count", "1", "--count", "2"], "--count given more than once"),
        (["--force=yes"], "--force takes no value"),
        (["stray"], "unexpected argument \"stray\"; every setting is a --flag"),
        (["-"], "unexpected argument \"-\"; every setting is a --flag"),
        (["-x"], "unknown option -x"),
    ])
    func rejectsBadCommandLines(arguments: [String], message: String) {
        #expect(throws: ConfigurationError.usage(message)) { try self.parser.parse(arguments) }
    }

    @Test func typedAccessorsRejectBadValues() throws {
        let arguments = try self.parser.parse([
            "--timeout", "soon", "--count", "1.5", "--listen", "8443", "--label", "x",
        ])
        #expect(throws: ConfigurationError.usage("--timeout expects a number, got \"soon\"")) {
            try arguments.double("--timeout")
        }
        #expect(throws: ConfigurationError.usage("--count expects a whole number, got \"1.5\"")) {
            try arguments.int("--count")
        }
        #expect(throws: ConfigurationError.usage("--label expects KEY=VALUE, got \"x\"")) {
            try arguments.keyValuePairs("--label")
        }
        do {
            _ = try arguments.listenAddress("--listen")
            Issue.record("expected an error")
        } catch ConfigurationError.usage(let message) {
            #expect(message.hasPrefix("--listen: \"8443\" has no port"))
        }
    }

    @Test func nonFiniteNumbersAreRejected() throws {
        let arguments = try self.parser.parse(["--timeout", "inf"])
        #expect(throws: ConfigurationError.usage("--timeout expects a number, got \"inf\"")) {
            try arguments.double("--timeout")
        }
    }

    @Test(arguments: [["-h"], ["--help"], ["--bogus", "--help"], ["--listen", ":1", "-h"]])
    func helpWinsOverEverything(arguments: [String]) {
        #expect(throws: ConfigurationError.helpRequested) { try self.parser.parse(arguments) }
    }

    @Test func usageListsEveryOptionWithValueHelpAndDefault() {
        let usage = self.parser.usage
        #expect(usage.hasPrefix("usage: tool [options]\n\nDoes a thing.\n\noptions:\n"))
        #expect(usage.contains("  --listen HOST:PORT  Where to listen. (default: :8443)\n"))
        #expect(usage.contains("  --name NAME         A name. (repeatable)\n"))
        #expect(usage.contains("  --force             Overwrite.\n"))
        #expect(usage.contains("  -h, --help          Show this help and exit.\n"))
    }

    @Test func outcomeOfEachErrorKind() {
        let help = CommandLineParser.outcome(of: ConfigurationError.helpRequested, usage: "USAGE\n")
        #expect(help.status == 0 && help.standardOutput == "USAGE\n" && help.standardError.isEmpty)
        let usage = CommandLineParser.outcome(of: ConfigurationError.usage("unknown option --x"), usage: "USAGE\n")
        #expect(usage.status == 64 && usage.standardOutput.isEmpty)
        #expect(usage.standardError == "error: unknown option --x\n\nUSAGE\n")
        let invalid = CommandLineParser.outcome(
            of: ConfigurationError.invalid(field: "caCertFile", reason: "required (--ca-cert FILE)"), usage: "USAGE\n")
        #expect(invalid.status == 64 && invalid.standardError == "error: caCertFile: required (--ca-cert FILE)\n")
        struct Other: Error {}
        #expect(CommandLineParser.outcome(of: Other(), usage: "USAGE\n").status == 1)
    }
}
