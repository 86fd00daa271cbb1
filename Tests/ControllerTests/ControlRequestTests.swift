import Foundation
import Testing
import TestSupport

@testable import Controller
@testable import Tunnel

@Suite struct ControlRequestTests {
    private func body(_ json: String) -> [UInt8] { Array(json.utf8) }

    private func kubeconfig(_ json: String) throws(ControlRequestError) -> KubeconfigRequest {
        try KubeconfigRequest(json: self.body(json), defaultUser: "admin", defaultTTLSeconds: 3600, maxTTLSeconds: 7200)
    }

    private func refusal(_ parse: () throws -> Void) -> ControlRequestError? {
        do {
            try parse()
            return nil
        } catch {
            return error as? ControlRequestError
        }
    }

    @Test func kubeconfigRequestAppliesDefaults() throws {
        let request = try self.kubeconfig(#"{"agent":"edge-1"}"#)
        #expect(request == KubeconfigRequest(agent: "edge-1", service: "default", user: "admin", ttlSeconds: 3600))
    }

    @Test func kubeconfigRequestReadsEveryField() throws {
        let request = try self.kubeconfig(#"{"agent":"edge-1","service":"prod","user":"alice@example.com","ttl":60}"#)
        let expected = KubeconfigRequest(agent: "edge-1", service: "prod", user: "alice@example.com", ttlSeconds: 60)
        #expect(request == expected)
    }

    @Test func kubeconfigRequestRefusesBadInput() {
        let cases: [(String, String)] = [
            ("", "agent: required"),
            ("{}", "agent: required"),
            ("[1]", "the request body must be a JSON object"),
            ("not json", "the request body must be a JSON object"),
            (#"{"agent":"a/b"}"#, #"agent: "a/b" must be non-empty letters, digits, '.', '_' or '-'"#),
            (#"{"agent":""}"#, #"agent: "" must be non-empty letters, digits, '.', '_' or '-'"#),
            (#"{"agent":7}"#, "agent: must be a string"),
            (#"{"agent":"a","service":"x y"}"#, #"service: "x y" must be non-empty letters, digits, '.', '_' or '-'"#),
            (#"{"agent":"a","user":"bob smith"}"#,
             #"user: "bob smith" must be 1 to 128 letters, digits, '.', '_', '-', '@' or '+'"#),
            (#"{"agent":"a","ttl":7201}"#, "ttl: 7201 seconds exceeds the maximum of 7200"),
            (#"{"agent":"a","ttl":0}"#, "ttl: must be a whole number of seconds, at least 1"),
            (#"{"agent":"a","ttl":1.5}"#, "ttl: must be a whole number of seconds, at least 1"),
            (#"{"agent":"a","ttl":"1h"}"#, "ttl: must be a number of seconds"),
            (#"{"agent":"a","tll":60}"#, #"unknown field "tll"; expected agent, service, ttl, user"#),
        ]
        for (json, reason) in cases {
            let error = self.refusal { _ = try self.kubeconfig(json) }
            #expect(error == ControlRequestError(reason), "body: \(json)")
            #expect(error?.status == 400)
        }
    }

    @Test func serviceTokenRequestValidatesType() throws {
        let parse = { (json: String) throws in
            try ServiceTokenRequest(json: self.body(json), defaultTTLSeconds: 600, maxTTLSeconds: 3600)
        }
        #expect(try parse(#"{"agent":"a","type":"jenkins"}"#)
            == ServiceTokenRequest(agent: "a", type: "jenkins", service: "default", user: nil, ttlSeconds: 600))
        #expect(try parse(#"{"agent":"a","type":"x-grafana","service":"main","user":"ci-bot","ttl":30}"#)
            == ServiceTokenRequest(agent: "a", type: "x-grafana", service: "main", user: "ci-bot", ttlSeconds: 30))
        #expect(self.refusal { _ = try parse(#"{"agent":"a"}"#) } == ControlRequestError("type: required"))
        let unknownType = self.refusal { _ = try parse(#"{"agent":"a","type":"gitlab"}"#) }
        #expect(unknownType?.reason.hasPrefix(#"type: "gitlab" is not one of kubernetes, jenkins, argocd"#) == true)
        #expect(self.refusal { _ = try parse(#"{"agent":"a","type":"X-Big"}"#) } != nil)
        #expect(self.refusal { _ = try parse(#"{"agent":"a","type":"argocd","user":""}"#) } != nil)
    }

    @Test func agentCredentialRequestNeedsAValidName() throws {
        #expect(try AgentCredentialRequest(json: Array(#"{"agent":"edge_1.eu"}"#.utf8)).agent == "edge_1.eu")
        #expect(self.refusal { _ = try AgentCredentialRequest(json: Array(#"{"agent":"../x"}"#.utf8)) } != nil)
        #expect(self.refusal { _ = try AgentCredentialRequest(json: []) } == ControlRequestError("agent: required"))
    }
}

@Suite struct KubeconfigTests {
    /// Parses YAML with PyYAML and prints it back as JSON, so the test checks what a YAML reader sees.
    private func parseYAML(_ yaml: String) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [testPython, "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(yaml.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func decode(_ value: Any?) -> String? {
        (value as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func entryNameJoinsAgentAndService() {
        #expect(Kubeconfig.entryName(agent: "edge-1", service: "default") == "porthole-edge-1-default")
    }

    @Test func yamlParsesBackToTheSameKubeconfig() throws {
        let authority = try CertificateAuthority.create(commonName: "test CA", validity: 3600)
        let issued = try authority.issueCredential(
            for: .kubernetes(agent: "edge-1", service: "default"), trustDomain: "porthole.local",
            commonName: "alice", validity: 600)
        let kubeconfig = Kubeconfig(
            name: "porthole-edge-1-default", server: "https://127.0.0.1:8443",
            certificateAuthorityPEM: authority.certificate.pem, clientCertificatePEM: issued.certificate.pem,
            clientKeyPEM: issued.key.pem)
        let parsed = try self.parseYAML(kubeconfig.yaml)
        #expect(parsed["apiVersion"] as? String == "v1")
        #expect(parsed["kind"] as? String == "Config")
        #expect(parsed["current-context"] as? String == "porthole-edge-1-default")

        let clusters = try #require(parsed["clusters"] as? [[String: Any]])
        #expect(clusters.count == 1)
        #expect(clusters[0]["name"] as? String == "porthole-edge-1-default")
        let cluster = try #require(clusters[0]["cluster"] as? [String: Any])
        #expect(cluster["server"] as? String == "https://127.0.0.1:8443")
        #expect(self.decode(cluster["certificate-authority-data"]) == authority.certificate.pem)

        let users = try #require(parsed["users"] as? [[String: Any]])
        #expect(users.count == 1)
        let user = try #require(users[0]["user"] as? [String: Any])
        let certificate = try Certificate(pem: try #require(self.decode(user["client-certificate-data"])))
        #expect(certificate.commonName == "alice")
        #expect(certificate.uriSANs == ["spiffe://porthole.local/kubernetes/edge-1/default"])
        let key = try PrivateKey(pem: try #require(self.decode(user["client-key-data"])))
        #expect(certificate.matches(key))

        let contexts = try #require(parsed["contexts"] as? [[String: Any]])
        let context = try #require(contexts.first?["context"] as? [String: String])
        #expect(context == ["cluster": "porthole-edge-1-default", "user": "porthole-edge-1-default"])
    }

    /// The agent's kubeconfig reader is tested against the same fixture (`readsTheKubeconfigsTheControllerIssues`).
    @Test func yamlIsTheFixtureTheAgentReads() throws {
        func pem(_ kind: String, _ body: String) -> String {
            "-----BEGIN \(kind)-----\n\(Data(body.utf8).base64EncodedString())\n-----END \(kind)-----\n"
        }
        let issued = Kubeconfig(
            name: "porthole-edge-default", server: "https://127.0.0.1:18443",
            certificateAuthorityPEM: pem("CERTIFICATE", "kind ca"),
            clientCertificatePEM: pem("CERTIFICATE", "minikube client"),
            clientKeyPEM: pem("RSA PRIVATE KEY", "minikube key"))
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/issued-kubeconfig.yaml")
        #expect(issued.yaml == (try String(contentsOf: fixture, encoding: .utf8)))
    }

    @Test func yamlQuotesAServerURLWithSpecialCharacters() throws {
        let kubeconfig = Kubeconfig(
            name: "porthole-a-b", server: #"https://h:1/p?q="x"&y=#z"#, certificateAuthorityPEM: "ca",
            clientCertificatePEM: "cert", clientKeyPEM: "key")
        let parsed = try self.parseYAML(kubeconfig.yaml)
        let cluster = (parsed["clusters"] as? [[String: Any]])?.first?["cluster"] as? [String: Any]
        #expect(cluster?["server"] as? String == #"https://h:1/p?q="x"&y=#z"#)
    }
}
