import Foundation
import Testing

@testable import Tunnel

/// Runs `body` and returns the `ConfigurationError` it throws, recording an issue if it throws none.
private func configurationError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation)
    -> ConfigurationError?
{
    do {
        try body()
        Issue.record("expected a ConfigurationError", sourceLocation: sourceLocation)
    } catch let error as ConfigurationError {
        return error
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:8443", "127.0.0.1", 8443, "127.0.0.1:8443"),
        ("[::1]:0", "::1", 0, "[::1]:0"),
        (":8443", "0.0.0.0", 8443, "0.0.0.0:8443"),
        ("localhost:65535", "localhost", 65535, "localhost:65535"),
        ("porthole-0.porthole.svc:8441", "porthole-0.porthole.svc", 8441, "porthole-0.porthole.svc:8441"),
        ("[fe80::1%eth0]:80", "fe80::1%eth0", 80, "[fe80::1%eth0]:80"),
    ])
    func parses(text: String, host: String, port: Int, description: String) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: UInt16(port)))
        #expect(address.description == description)
        #expect(try ListenAddress(parsing: address.description) == address)
    }

    @Test(arguments: [
        ("", "has no port"), ("8443", "has no port"), ("host:", "has no numeric port"),
        ("host:http", "has no numeric port"), ("host:70000", "has a port above 65535"),
        ("host:-1", "has no numeric port"), ("::1:80", "looks like an IPv6 address; write it in brackets"),
        ("[::1", "has no closing ']'"), ("[::1]80", "has no ':PORT' after ']'"),
        ("[]:80", "has no valid IPv6 address in brackets"), ("[nothex]:80", "has no valid IPv6 address in brackets"),
        ("http://x:80", "looks like an IPv6 address; write it in brackets"),
        ("my host:80", "has a host that is not a name or IP address"),
    ])
    func rejects(text: String, why: String) {
        let error = configurationError { _ = try ListenAddress(parsing: text, field: "agentListen") }
        #expect(
            error
                == .invalid(
                    field: "agentListen",
                    reason: "\"\(text)\" \(why); expected HOST:PORT, e.g. 127.0.0.1:8443, [::1]:8443 or :8443"))
    }

    @Test func codesAsString() throws {
        let data = try JSONEncoder().encode([ListenAddress(host: "::1", port: 9)])
        #expect(String(decoding: data, as: UTF8.self) == #"["[::1]:9"]"#)
        #expect(try JSONDecoder().decode([ListenAddress].self, from: data) == [ListenAddress(host: "::1", port: 9)])
    }
}

@Suite struct CommandLineVersionTests {
    private let parser = CommandLineParser(command: "porthole-test", summary: "Tests.", options: [
        .flag("--force", help: "Overwrite."),
    ])

    @Test(arguments: [["--version"], ["--force", "--version"], ["--bogus", "--version"]])
    func versionWinsOverEverythingButHelp(arguments: [String]) {
        #expect(throws: ConfigurationError.versionRequested(command: "porthole-test")) {
            try self.parser.parse(arguments)
        }
        #expect(throws: ConfigurationError.helpRequested) { try self.parser.parse(arguments + ["-h"]) }
    }

    @Test func versionPrintsCommandAndVersionAndExitsZero() {
        let outcome = CommandLineParser.outcome(of: ConfigurationError.versionRequested(command: "porthole-test"),
                                                usage: "USAGE\n")
        #expect(outcome == .init(status: 0, standardOutput: "porthole-test \(portholeVersion)\n", standardError: ""))
        #expect(self.parser.usage.contains("  --version   Print the version and exit.\n"))
    }

    @Test func startupErrorsFromBadFilesExit64() {
        #expect(ConfigurationError.exitStatus(forStartupError: ConfigurationError.syntax(
            path: "s.json", line: 1, column: 1, reason: "x")) == 64)
        #expect(ConfigurationError.exitStatus(forStartupError: PEMFileError(
            path: "ca.crt", role: "CA certificate", problem: .wrongContent(expected: "CERTIFICATE", found: nil))) == 64)
        #expect(ConfigurationError.exitStatus(forStartupError: IOError(errno: EADDRINUSE, call: "bind")) == 1)
    }
}
