import Foundation
import Testing
import TestSupport

@testable import Controller
@testable import Tunnel


private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct ControllerConfigurationTests {
    let required = ["--ca-cert", "ca.crt", "--ca-key", "ca.key"]

    @Test func defaults() throws {
        let configuration = try ControllerConfiguration.load(arguments: self.required)
        #expect(configuration.caCertFile == "ca.crt" && configuration.caKeyFile == "ca.key")
        #expect(configuration.serverNames == ["localhost"])
        #expect(configuration.serverCertFile == nil && configuration.serverKeyFile == nil)
        #expect(configuration.agentListen.description == "0.0.0.0:8441")
        #expect(configuration.serviceListen.description == "0.0.0.0:8443")
        #expect(configuration.controlListen.description == "0.0.0.0:8444")
        #expect(configuration.metricsListen.description == "0.0.0.0:9090")
        #expect(configuration.serviceURL == nil)
        #expect(configuration.trustDomain == "porthole.local")
        #expect(configuration.logLevel == "info" && configuration.level == .info)
        #expect(configuration.pingIntervalSeconds == 10 && configuration.pingTimeoutSeconds == 30)
        #expect(configuration.instanceID == nil)
        #expect(configuration.drainTimeoutSeconds == 30)
        #expect(configuration.streamWindowBytes == 4_194_304 && configuration.maxHeaderBytes == 65_536)
        #expect(configuration.kubeconfigDefaultTTLSeconds == 28_800 && configuration.kubeconfigMaxTTLSeconds == 86_400)
        #expect(configuration.tokenDefaultTTLSeconds == 3_600 && configuration.tokenMaxTTLSeconds == 86_400)
        #expect(configuration.requestHeadTimeoutSeconds == 10 && configuration.idleTimeoutSeconds == 60)
        #expect(configuration.maxConcurrentStreamsPerConnection == 128)
        #expect(configuration.userConnectionWindowBytes == 16_777_216)
    }

    @Test func everyFlagIsApplied() throws {
        let configuration = try ControllerConfiguration.load(arguments: [
            "--ca-cert", "/ca.crt", "--ca-key=/ca.key", "--server-name", "a.example", "--server-name", "10.0.0.1",
            "--server-cert", "/s.crt", "--server-key", "/s.key", "--agent-listen", "127.0.0.1:0",
            "--service-listen", "[::1]:0", "--control-listen", ":0", "--metrics-listen", "127.0.0.1:0",
            "--service-url", "https://a.example:443", "--trust-domain", "corp.example", "--log-level", "debug",
            "--ping-interval", "0.5", "--ping-timeout", "2", "--instance-id", "ctl-1", "--drain-timeout", "0",
            "--request-head-timeout", "2.5", "--idle-timeout", "30", "--max-concurrent-streams", "64",
            "--user-connection-window", "1048576",
        ])
        var expected = ControllerConfiguration()
        expected.caCertFile = "/ca.crt"
        expected.caKeyFile = "/ca.key"
        expected.serverNames = ["a.example", "10.0.0.1"]
        expected.serverCertFile = "/s.crt"
        expected.serverKeyFile = "/s.key"
        expected.agentListen = ListenAddress(host: "127.0.0.1", port: 0)
        expected.serviceListen = ListenAddress(host: "::1", port: 0)
        expected.controlListen = ListenAddress(host: "0.0.0.0", port: 0)
        expected.metricsListen = ListenAddress(host: "127.0.0.1", port: 0)
        expected.serviceURL = "https://a.example:443"
        expected.trustDomain = "corp.example"
        expected.logLevel = "debug"
        expected.pingIntervalSeconds = 0.5
        expected.pingTimeoutSeconds = 2
        expected.instanceID = "ctl-1"
        expected.drainTimeoutSeconds = 0
        expected.requestHeadTimeoutSeconds = 2.5
        expected.idleTimeoutSeconds = 30
        expected.maxConcurrentStreamsPerConnection = 64
        expected.userConnectionWindowBytes = 1_048_576
        #expect(configuration == expected)
    }

    @Test func flagsOverrideFileWhichOverridesDefaults() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "controller.json",
            """
            {"caCertFile": "pki/ca.crt", "caKeyFile": "/abs/ca.key", "serverNames": ["file.example"],
             "agentListen": "127.0.0.1:7000", "pingIntervalSeconds": 5, "streamWindowBytes": 2097152,
             "serviceURL": null}
            """)
        let configuration = try ControllerConfiguration.load(arguments: [
            "--config", file, "--agent-listen", "127.0.0.1:7001", "--server-name", "flag.example",
        ])
        #expect(configuration.caCertFile == "\(directory.path)/pki/ca.crt")
        #expect(configuration.caKeyFile == "/abs/ca.key")
        #expect(configuration.agentListen == ListenAddress(host: "127.0.0.1", port: 7001))
        #expect(configuration.serverNames == ["flag.example"])
        #expect(configuration.pingIntervalSeconds == 5)
        #expect(configuration.streamWindowBytes == 2_097_152)
        #expect(configuration.pingTimeoutSeconds == 30)
        #expect(configuration.serviceListen == ListenAddress(host: "0.0.0.0", port: 8443))
    }

    @Test func exampleFileHasEveryFieldAndValidates() throws {
        let path = "\(repositoryRoot)/examples/config/controller.json"
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        let keys = Set((object as? [String: Any] ?? [:]).keys)
        #expect(keys == Set(ControllerConfiguration.CodingKeys.allCases.map(\.stringValue)))
        let configuration = try ControllerConfiguration.load(arguments: ["--config", path])
        #expect(configuration.serverNames.first == "porthole.example.com")
    }

    @Test func roundTripsThroughJSON() throws {
        var configuration = ControllerConfiguration()
        configuration.caCertFile = "/ca.crt"
        configuration.instanceID = "x"
        let data = try JSONEncoder().encode(configuration)
        #expect(try JSONDecoder().decode(ControllerConfiguration.self, from: data) == configuration)
    }

    @Test func helpListsEveryContractFlag() {
        let usage = ControllerConfiguration.usage
        for flag in [
            "--ca-cert FILE", "--ca-key FILE", "--server-name NAME", "--server-cert FILE", "--server-key FILE",
            "--agent-listen HOST:PORT", "--service-listen HOST:PORT", "--control-listen HOST:PORT",
            "--metrics-listen HOST:PORT", "--service-url URL", "--trust-domain DOMAIN", "--config FILE",
            "--log-level LEVEL", "--ping-interval SECONDS", "--ping-timeout SECONDS", "--instance-id ID",
            "--drain-timeout SECONDS", "-h, --help",
        ] {
            #expect(usage.contains("  \(flag)"), "missing \(flag)")
        }
        #expect(usage.hasPrefix("usage: porthole-controller [options]"))
        #expect(usage.contains("(default: 0.0.0.0:8441)"))
        #expect(usage.contains("(repeatable; default: localhost)"))
        #expect(usage.split(separator: "\n").allSatisfy { $0.count <= 120 })
        #expect(throws: ConfigurationError.helpRequested) { try ControllerConfiguration.load(arguments: ["-h"]) }
    }

    @Test func requiresCAFiles() {
        #expect(invalidField { _ = try ControllerConfiguration.load(arguments: []) } == "caCertFile")
        #expect(invalidField { _ = try ControllerConfiguration.load(arguments: ["--ca-cert", "x"]) } == "caKeyFile")
    }

    @Test(arguments: [
        (["--server-cert", "s.crt"], "serverKeyFile"),
        (["--server-key", "s.key"], "serverCertFile"),
        (["--server-cert", "", "--server-key", "k"], "serverCertFile"),
        (["--server-name", "bad name"], "serverNames[0]"),
        (["--server-name", "ok.example", "--server-name", "-bad.example"], "serverNames[1]"),
        (["--service-listen", ":8441"], "serviceListen"),
        (["--metrics-listen", "127.0.0.1:8444"], "metricsListen"),
        (["--service-url", "http://x.example"], "serviceURL"),
        (["--service-url", "x.example:443"], "serviceURL"),
        (["--trust-domain", "Porthole.Local"], "trustDomain"),
        (["--trust-domain", ""], "trustDomain"),
        (["--log-level", "verbose"], "logLevel"),
        (["--ping-interval", "0"], "pingIntervalSeconds"),
        (["--ping-interval", "-1"], "pingIntervalSeconds"),
        (["--ping-timeout", "10"], "pingTimeoutSeconds"),
        (["--ping-interval", "20", "--ping-timeout", "15"], "pingTimeoutSeconds"),
        (["--instance-id", "a b"], "instanceID"),
        (["--instance-id", ""], "instanceID"),
        (["--drain-timeout", "-1"], "drainTimeoutSeconds"),
        (["--request-head-timeout", "0"], "requestHeadTimeoutSeconds"),
        (["--idle-timeout", "-1"], "idleTimeoutSeconds"),
        (["--idle-timeout", "100000"], "idleTimeoutSeconds"),
        (["--max-concurrent-streams", "0"], "maxConcurrentStreamsPerConnection"),
        (["--user-connection-window", "1000"], "userConnectionWindowBytes"),
    ])
    func rejectsInvalidFlagValues(arguments: [String], field: String) {
        #expect(invalidField { _ = try ControllerConfiguration.load(arguments: self.required + arguments) } == field)
    }

    @Test(arguments: [
        (#"{"serverNames": []}"#, "serverNames"),
        (#"{"streamWindowBytes": 1000}"#, "streamWindowBytes"),
        (#"{"streamWindowBytes": 4294967296}"#, "streamWindowBytes"),
        (#"{"maxHeaderBytes": 100}"#, "maxHeaderBytes"),
        (#"{"requestHeadTimeoutSeconds": 0}"#, "requestHeadTimeoutSeconds"),
        (#"{"idleTimeoutSeconds": 0}"#, "idleTimeoutSeconds"),
        (#"{"maxConcurrentStreamsPerConnection": 100000}"#, "maxConcurrentStreamsPerConnection"),
        (#"{"userConnectionWindowBytes": 4294967296}"#, "userConnectionWindowBytes"),
        (#"{"kubeconfigDefaultTTLSeconds": 0}"#, "kubeconfigDefaultTTLSeconds"),
        (#"{"kubeconfigMaxTTLSeconds": 60}"#, "kubeconfigMaxTTLSeconds"),
        (#"{"tokenDefaultTTLSeconds": -5}"#, "tokenDefaultTTLSeconds"),
        (#"{"tokenMaxTTLSeconds": 10}"#, "tokenMaxTTLSeconds"),
    ])
    func rejectsInvalidFileValues(json: String, field: String) throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("c.json", json)
        #expect(
            invalidField { _ = try ControllerConfiguration.load(arguments: self.required + ["--config", file]) }
                == field)
    }

    @Test func validationMessagesSayHowToFix() {
        #expect(
            configurationError { _ = try ControllerConfiguration.load(arguments: []) }
                == .invalid(field: "caCertFile", reason: "required (--ca-cert FILE)"))
        #expect(
            configurationError {
                _ = try ControllerConfiguration.load(arguments: self.required + ["--ping-timeout", "5"])
            } == .invalid(field: "pingTimeoutSeconds", reason: "must be more than pingIntervalSeconds (10), got 5"))
        #expect(
            configurationError {
                _ = try ControllerConfiguration.load(arguments: self.required + ["--control-listen", ":8443"])
            } == .invalid(field: "controlListen", reason: "0.0.0.0:8443 clashes with serviceListen (0.0.0.0:8443)"))
    }

    @Test func listenersOnDifferentHostsOrEphemeralPortsDoNotClash() throws {
        _ = try ControllerConfiguration.load(
            arguments: self.required + [
                "--agent-listen", "127.0.0.1:9000", "--service-listen", "127.0.0.2:9000", "--control-listen", ":0",
                "--metrics-listen", ":0",
            ])
    }

    @Test func badFlagValueIsUsageError() {
        let error = configurationError {
            _ = try ControllerConfiguration.load(arguments: self.required + ["--agent-listen", "nope"])
        }
        guard case .usage(let message)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(message.hasPrefix("--agent-listen: \"nope\" has no port"))
        #expect(
            configurationError { _ = try ControllerConfiguration.load(arguments: ["--ping-interval", "often"]) }
                == .usage("--ping-interval expects a number, got \"often\""))
    }

    @Test func fileErrorsNameFileAndField() throws {
        let directory = try TemporaryDirectory()
        let missing = "\(directory.path)/missing.json"
        #expect(
            configurationError { _ = try ControllerConfiguration.load(arguments: ["--config", missing]) }
                == .unreadableFile(path: missing, reason: "No such file or directory"))

        let cases: [(String, String)] = [
            (#"{"pingIntervalSeconds": "ten"}"#, "pingIntervalSeconds: expected a number"),
            (#"{"agentListen": "8441"}"#, "agentListen: \"8441\" has no port"),
            (#"{"serverNames": "a"}"#, "serverNames: expected an array"),
            (#"{"caCertFile": null, "pingIntervalSecond": 3}"#, "pingIntervalSecond: unknown field (known fields: "),
            (#"[]"#, "expected an object"),
        ]
        for (json, prefix) in cases {
            let file = try directory.write("bad.json", json)
            let error = configurationError { _ = try ControllerConfiguration.load(arguments: ["--config", file]) }
            guard case .malformedFile(let path, let reason)? = error else {
                Issue.record("\(json): \(String(describing: error))")
                continue
            }
            #expect(path == file)
            #expect(reason.hasPrefix(prefix), "\(json) gave \(reason)")
        }
    }

    @Test func derivedValues() throws {
        var configuration = try ControllerConfiguration.load(arguments: self.required)
        #expect(configuration.serviceURL(boundPort: 41_234) == "https://localhost:41234")
        configuration.serverNames = ["::1"]
        #expect(configuration.serviceURL(boundPort: 1) == "https://[::1]:1")
        configuration.serviceURL = "https://porthole.example.com"
        #expect(configuration.serviceURL(boundPort: 1) == "https://porthole.example.com")
        let generated = configuration.makeInstanceID()
        #expect(generated.count > 9 && generated != configuration.makeInstanceID())
        #expect(ConfigurationValidation.isName(generated))
        configuration.instanceID = "fixed"
        #expect(configuration.makeInstanceID() == "fixed")
    }
}
