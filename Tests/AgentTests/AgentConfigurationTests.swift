import Foundation
import Testing
import TestSupport

@testable import Agent
@testable import Tunnel


private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Suite struct AgentConfigurationTests {
    let required = [
        "--controller", "127.0.0.1:8441", "--cert", "a.crt", "--key", "a.key", "--ca-cert", "ca.crt", "--services",
        "s.json",
    ]

    @Test func defaults() throws {
        let configuration = try AgentConfiguration.load(arguments: self.required)
        #expect(configuration.controllers == [ListenAddress(host: "127.0.0.1", port: 8441)])
        #expect(configuration.certFile == "a.crt" && configuration.keyFile == "a.key")
        #expect(configuration.caCertFile == "ca.crt" && configuration.servicesFile == "s.json")
        #expect(configuration.annotations.isEmpty)
        #expect(configuration.logLevel == "info" && configuration.metricsListen == nil)
        #expect(configuration.pingIntervalSeconds == 10 && configuration.pingTimeoutSeconds == 30)
        #expect(configuration.reconnectMinSeconds == 0.5 && configuration.reconnectMaxSeconds == 30)
        #expect(configuration.reconnectResetAfterSeconds == 60)
        #expect(configuration.streamWindowBytes == 4_194_304)
        #expect(configuration.controllerServerName == nil)
        #expect(configuration.serverName(for: configuration.controllers[0]) == "127.0.0.1")
    }

    @Test func flagsOverrideFile() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "agent.json",
            """
            {"controllers": ["a.example:1", "b.example:2"], "certFile": "tls/agent.crt", "keyFile": "tls/agent.key",
             "caCertFile": "/etc/ca.crt", "servicesFile": "services.json",
             "annotations": {"team": "file", "region": "eu"}, "reconnectMaxSeconds": 10,
             "controllerServerName": "porthole.example"}
            """)
        let configuration = try AgentConfiguration.load(arguments: [
            "--config", file, "--controller", "c.example:3", "--annotation", "team=flag", "--annotation", "tier=1",
            "--metrics-listen", ":9091", "--log-level", "warning", "--ping-interval", "1", "--ping-timeout", "3",
            "--key", "/override.key",
        ])
        #expect(configuration.controllers == [ListenAddress(host: "c.example", port: 3)])
        #expect(configuration.certFile == "\(directory.path)/tls/agent.crt")
        #expect(configuration.keyFile == "/override.key")
        #expect(configuration.servicesFile == "\(directory.path)/services.json")
        #expect(configuration.annotations == ["team": "flag", "region": "eu", "tier": "1"])
        #expect(configuration.metricsListen == ListenAddress(host: "0.0.0.0", port: 9091))
        #expect(configuration.level == .warning)
        #expect(configuration.pingIntervalSeconds == 1 && configuration.pingTimeoutSeconds == 3)
        #expect(configuration.reconnectMaxSeconds == 10)
        #expect(configuration.serverName(for: configuration.controllers[0]) == "porthole.example")
    }

    @Test func exampleFileHasEveryFieldAndValidates() throws {
        let path = "\(repositoryRoot)/examples/config/agent.json"
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        let keys = Set((object as? [String: Any] ?? [:]).keys)
        #expect(keys == Set(AgentConfiguration.CodingKeys.allCases.map(\.stringValue)))
        let configuration = try AgentConfiguration.load(arguments: ["--config", path])
        #expect(configuration.controllers.count == 2)
    }

    @Test func helpListsEveryContractFlag() {
        let usage = AgentConfiguration.usage
        for flag in [
            "--controller HOST:PORT", "--cert FILE", "--key FILE", "--ca-cert FILE", "--services FILE",
            "--config FILE", "--log-level LEVEL", "--annotation KEY=VALUE", "--metrics-listen HOST:PORT",
            "--ping-interval SECONDS", "--ping-timeout SECONDS", "--controller-server-name NAME", "-h, --help",
        ] {
            #expect(usage.contains("  \(flag)"), "missing \(flag)")
        }
        #expect(usage.split(separator: "\n").allSatisfy { $0.count <= 120 })
    }

    @Test(arguments: [
        ([], "controllers"),
        (["--controller", "x.example:1"], "certFile"),
        (["--controller", "x.example:1", "--cert", "c"], "keyFile"),
        (["--controller", "x.example:1", "--cert", "c", "--key", "k"], "caCertFile"),
        (["--controller", "x.example:1", "--cert", "c", "--key", "k", "--ca-cert", "ca"], "servicesFile"),
    ])
    func requiresEachSetting(arguments: [String], field: String) {
        #expect(invalidField { _ = try AgentConfiguration.load(arguments: arguments) } == field)
    }

    @Test(arguments: [
        (["--controller", "x.example:0"], "controllers[1]"),
        (["--controller", "x.example:1", "--controller", ":8441"], "controllers[2]"),
        (["--annotation", "bad key=1"], "annotations"),
        (["--annotation", "a/b/c=1"], "annotations"),
        (["--log-level", "loud"], "logLevel"),
        (["--ping-interval", "0"], "pingIntervalSeconds"),
        (["--ping-timeout", "1"], "pingTimeoutSeconds"),
        (["--controller-server-name", "no_underscores.example"], "controllerServerName"),
    ])
    func rejectsInvalidFlagValues(arguments: [String], field: String) {
        #expect(invalidField { _ = try AgentConfiguration.load(arguments: self.required + arguments) } == field)
    }

    @Test(arguments: [
        (#"{"reconnectMinSeconds": 0}"#, "reconnectMinSeconds"),
        (#"{"reconnectMinSeconds": 5, "reconnectMaxSeconds": 1}"#, "reconnectMaxSeconds"),
        (#"{"reconnectResetAfterSeconds": -1}"#, "reconnectResetAfterSeconds"),
        (#"{"streamWindowBytes": 0}"#, "streamWindowBytes"),
    ])
    func rejectsInvalidFileValues(json: String, field: String) throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("a.json", json)
        #expect(
            invalidField { _ = try AgentConfiguration.load(arguments: self.required + ["--config", file]) } == field)
    }

    @Test func badAnnotationAndControllerAreUsageErrors() {
        #expect(
            configurationError { _ = try AgentConfiguration.load(arguments: ["--annotation", "novalue"]) }
                == .usage("--annotation expects KEY=VALUE, got \"novalue\""))
        guard
            case .usage(let message)? = configurationError({
                _ = try AgentConfiguration.load(arguments: ["--controller", "::1:80"])
            })
        else { return }
        #expect(message.contains("write it in brackets"))
    }
}

@Suite struct ServicesFileTests {
    private func decode(_ json: String) throws -> ServicesFile {
        try ServicesFile.decode(Data(json.utf8), path: "services.json")
    }

    /// The field a services file with `service` after a valid one is refused for; the error names the file first.
    private func invalid(_ service: String) -> String? {
        let error = configurationError {
            _ = try self.decode(#"{"services": [{"type":"jenkins","name":"ok","url":"http://j"}, "# + service + "]}")
        }
        guard case .malformedFile("services.json", let reason)? = error else { return nil }
        return reason.components(separatedBy: ": ").first
    }

    @Test func exampleFileLoadsAndValidates() throws {
        let file = try ServicesFile.load(path: "\(repositoryRoot)/examples/config/services.json")
        #expect(
            file.services.map(\.type) == ["kubernetes", "kubernetes", "kubernetes", "jenkins", "argocd", "x-grafana"])
        #expect(file.services[0].isInCluster && file.services[0].credentials.kind == .none)
        #expect(
            file.services[1].credentials.kind
                == .clientCertificate(
                    .init(
                        certFile: "/etc/porthole/edge-cluster/client.crt",
                        keyFile: "/etc/porthole/edge-cluster/client.key")))
        #expect(file.services[2].kubeconfig == "/etc/porthole/staging/kubeconfig")
        #expect(file.services[2].context == "staging-admin")
        #expect(
            file.services[3].credentials.kind
                == .basicAuth(
                    .init(
                        usernameFile: "/var/run/secrets/jenkins/username",
                        passwordFile: "/var/run/secrets/jenkins/api-token")))
        #expect(file.services[4].credentials.kind == .bearerToken(file: "/var/run/secrets/argocd/token"))
        #expect(file.services[3].maxIdleConnections == 16 && file.services[4].maxIdleConnections == 256)
        let everyField = Set(ServiceDefinition.CodingKeys.allCases.map(\.stringValue))
        let object = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/examples/config/services.json")))
        let services = (object as? [String: Any])?["services"] as? [[String: Any]] ?? []
        #expect(services.reduce(into: Set<String>()) { $0.formUnion($1.keys) } == everyField)
    }

    @Test func minimalServiceTakesDefaults() throws {
        let file = try self.decode(#"{"services": [{"type": "x-custom", "name": "a", "url": "https://a.example"}]}"#)
        #expect(file.services == [ServiceDefinition(type: "x-custom", name: "a", url: "https://a.example")])
        #expect(file.services[0].insecureSkipVerify == false && file.services[0].annotations.isEmpty)
        #expect(file.services[0].maxIdleConnections == ServiceDefinition.defaultMaxIdleConnections)
    }

    @Test(arguments: ["{}", #"{"services": []}"#])
    func anEmptyServiceListIsRefused(json: String) {
        #expect(
            configurationError { _ = try self.decode(json) }
                == .malformedFile(
                    path: "services.json",
                    reason: "services: no services: list at least one (see docs/configuration.md)"))
    }

    @Test(arguments: [
        (
            #"{"services": [{"type":"jenkins","name":"a","url":"http://a"},]}"#, 1, 61,
            "trailing comma before `]`; JSON allows none"
        ),
        ("{\n  \"services\": [],\n}", 2, 17, "trailing comma before `}`; JSON allows none"),
        ("{\n  \"services\": [\n    {\"type\" \"jenkins\"}\n  ]\n}", 3, 13, "expected `:` after the field name"),
        (#"{"services": ["#, 1, 15, "unexpected end of the file; expected a value"),
        (#"{"services": [{'type': 'x'}]}"#, 1, 16, "expected a quoted field name, found `'`"),
        ("{\"é\": 1 2}", 1, 9, "expected `,` or `}` in an object, found `2`"),
        ("", 1, 1, "the file is empty; expected a JSON object"),
        (#"{"a": 01}"#, 1, 7, "a number cannot start with 0"),
        (#"{"a": "x"} {}"#, 1, 12, "unexpected text after the JSON document"),
    ])
    func syntaxErrorsNameLineAndColumn(json: String, line: Int, column: Int, reason: String) {
        #expect(
            configurationError { _ = try self.decode(json) }
                == .syntax(path: "services.json", line: line, column: column, reason: reason))
    }

    @Test func aSyntaxErrorReadsAsFileLineColumn() {
        let error = ConfigurationError.syntax(path: "s.json", line: 3, column: 7, reason: "trailing comma before `]`")
        #expect("\(error)" == "s.json:3:7: trailing comma before `]`")
    }

    @Test func validJSONPassesTheSyntaxCheck() throws {
        try JSONSyntax.check(Array(#" {"a": [1, -0.5e+3, true, false, null, "\u00e9\n", {}, []]} "#.utf8))
    }

    @Test func relativePathsResolveAgainstTheFile() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "services.json",
            #"""
            {"services": [{"type": "argocd", "name": "a", "url": "https://a", "caFile": "certs/ca.crt",
              "credentials": {"basicAuth": {"usernameFile": "user", "passwordFile": "/abs/pass"}}}]}
            """#)
        let service = try ServicesFile.load(path: path).services[0]
        #expect(service.caFile == "\(directory.path)/certs/ca.crt")
        #expect(
            service.credentials.basicAuth == .init(usernameFile: "\(directory.path)/user", passwordFile: "/abs/pass"))
    }

    @Test(arguments: [
        (#"{"type":"Jenkins","name":"a","url":"http://a"}"#, "services[1].type"),
        (#"{"type":"gitlab","name":"a","url":"http://a"}"#, "services[1].type"),
        (#"{"type":"x-","name":"a","url":"http://a"}"#, "services[1].type"),
        (#"{"type":"x_custom","name":"a","url":"http://a"}"#, "services[1].type"),
        (#"{"type":"jenkins","name":"","url":"http://a"}"#, "services[1].name"),
        (#"{"type":"jenkins","name":"a/b","url":"http://a"}"#, "services[1].name"),
        (#"{"type":"jenkins","name":"ok","url":"http://other"}"#, "services[1].name"),
        (#"{"type":"jenkins","name":"a"}"#, "services[1].url"),
        (#"{"type":"kubernetes","name":"a"}"#, "services[1].url"),
        (#"{"type":"kubernetes","name":"a","inCluster":false}"#, "services[1].url"),
        (#"{"type":"jenkins","name":"a","url":"ftp://a"}"#, "services[1].url"),
        (#"{"type":"jenkins","name":"a","url":"not a url"}"#, "services[1].url"),
        (#"{"type":"jenkins","name":"a","url":"http://a","inCluster":true}"#, "services[1].inCluster"),
        (#"{"type":"jenkins","name":"a","url":"http://a","caFile":"/ca"}"#, "services[1].caFile"),
        (#"{"type":"jenkins","name":"a","url":"https://a","caFile":""}"#, "services[1].caFile"),
        (#"{"type":"jenkins","name":"a","url":"http://a","annotations":{"a b":"c"}}"#, "services[1].annotations"),
        (#"{"type":"jenkins","name":"a","url":"http://a","maxIdleConnections":-1}"#, "services[1].maxIdleConnections"),
        (#"{"type":"jenkins","name":"a","url":"http://a","maxIdleConnections":70000}"#, "services[1].maxIdleConnections"),
        (
            #"{"type":"jenkins","name":"a","url":"http://a","credentials":{"bearerTokenFile":"/t","#
                + #""basicAuth":{"usernameFile":"/u","passwordFile":"/p"}}}"#,
            "services[1].credentials"
        ),
        (
            #"{"type":"jenkins","name":"a","url":"http://a","credentials":{"bearerTokenFile":"/t","#
                + #""clientCertificate":{"certFile":"/c","keyFile":"/k"}}}"#,
            "services[1].credentials"
        ),
        (
            #"{"type":"jenkins","name":"a","url":"http://a","credentials":{"bearerTokenFile":""}}"#,
            "services[1].credentials.bearerTokenFile"
        ),
        (
            #"{"type":"jenkins","name":"a","url":"http://a","#
                + #""credentials":{"basicAuth":{"usernameFile":"/u","passwordFile":""}}}"#,
            "services[1].credentials.basicAuth.passwordFile"
        ),
    ])
    func rejectsInvalidService(service: String, field: String) {
        #expect(self.invalid(service) == field)
    }

    @Test func inClusterKubernetesNeedsNoURL() throws {
        let file = try self.decode(#"{"services": [{"type":"kubernetes","name":"default","inCluster":true}]}"#)
        #expect(file.services[0].url == nil && file.services[0].isInCluster)
    }

    @Test func sameNameUnderAnotherTypeIsFine() throws {
        _ = try self.decode(
            #"{"services": [{"type":"jenkins","name":"a","url":"http://a"},"#
                + #"{"type":"argocd","name":"a","url":"http://a"}]}"#)
    }

    @Test func errorMessagesNameIndexAndField() {
        #expect(
            configurationError {
                _ = try self.decode(#"{"services": [{"type":"gitlab","name":"a","url":"http://a"}]}"#)
            }
                == .malformedFile(
                    path: "services.json",
                    reason: "services[0].type: \"gitlab\" is not one of kubernetes, jenkins, argocd; custom types "
                        + "start with \"x-\""))
        #expect(
            configurationError {
                _ = try self.decode(
                    #"{"services": [{"type":"jenkins","name":"a","url":"http://a"},"#
                        + #"{"type":"jenkins","name":"a","url":"http://b"}]}"#)
            }
                == .malformedFile(
                    path: "services.json",
                    reason: "services[1].name: jenkins service \"a\" is already defined by services[0]"))
    }

    @Test(arguments: [
        (#"{"services": [{"name":"a"}]}"#, "services[0].type: required field is missing"),
        (
            #"{"services": [{"type":"jenkins","name":"a","url":"http://a","insecureSkipVerify":"no"}]}"#,
            "services[0].insecureSkipVerify: expected true or false"
        ),
        (
            #"{"services": [{"type":"jenkins","name":"a","credentials":{"bearerToken":"x"}}]}"#,
            "services[0].credentials.bearerToken: unknown field"
        ),
        (
            #"{"services": [{"type":"jenkins","name":"a","credentials":{"basicAuth":{"usernameFile":"/u"}}}]}"#,
            "services[0].credentials.basicAuth.passwordFile: required field is missing"
        ),
        (#"{"service": []}"#, "service: unknown field"),
    ])
    func malformedEntriesNameTheField(json: String, prefix: String) {
        let error = configurationError { _ = try self.decode(json) }
        guard case .malformedFile(let path, let reason)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(path == "services.json")
        #expect(reason.hasPrefix(prefix), "got \(reason)")
    }
}
