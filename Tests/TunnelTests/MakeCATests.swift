import Foundation
import Testing

@testable import Tunnel

@Suite struct MakeCATests {
    /// The make-ca binary built next to the test bundle (both live in the build's bin directory).
    static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // On Linux arguments[0] is the .xctest binary itself; on macOS it may be inside the bundle.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("make-ca").path),
            directory.pathComponents.count > 1
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("make-ca")
    }

    struct Run {
        let status: Int32
        let standardOutput: String
        let standardError: String
    }

    static func makeCA(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self))
    }

    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func writesVerifiableCredentialsWithPrivateKeys() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build make-ca first")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("pki").path
        let run = try Self.makeCA([
            "--out", out, "--trust-domain", "example.test", "--agent", "edge-1", "--agent", "edge-2",
            "--validity-days", "30",
        ])
        #expect(run.status == 0, "\(run.standardError)")

        let ca = "\(out)/ca.crt"
        for name in ["control", "agent-edge-1", "agent-edge-2"] {
            let verify = try runOpenSSL(["verify", "-purpose", "sslclient", "-CAfile", ca, "\(out)/\(name).crt"])
            #expect(verify.status == 0, "\(verify.output)")
            #expect(try Self.mode("\(out)/\(name).key") == 0o600)
            let certificate = try Certificate(pem: String(contentsOfFile: "\(out)/\(name).crt", encoding: .utf8))
            let key = try PrivateKey(pem: String(contentsOfFile: "\(out)/\(name).key", encoding: .utf8))
            #expect(certificate.matches(key))
            let lifetime = certificate.notAfter.timeIntervalSince(certificate.notBefore)
            #expect(abs(lifetime - 30 * 86400) < 1)
        }
        #expect(try Self.mode("\(out)/ca.key") == 0o600)
        #expect(try Self.mode("\(out)/secrets.yaml") == 0o600)
        #expect(try Self.mode(ca) == 0o644)

        let authority = try CertificateAuthority(
            certificatePEM: String(contentsOfFile: ca, encoding: .utf8),
            keyPEM: String(contentsOfFile: "\(out)/ca.key", encoding: .utf8))
        #expect(authority.certificate.notAfter.timeIntervalSinceNow > 9 * 365 * 86400)
        let control = try Certificate(pem: String(contentsOfFile: "\(out)/control.crt", encoding: .utf8))
        #expect(EndpointIdentity.from(certificate: control, trustDomain: "example.test") == .control(name: "admin"))
        #expect(control.commonName == "admin")
        let agent = try Certificate(pem: String(contentsOfFile: "\(out)/agent-edge-2.crt", encoding: .utf8))
        #expect(EndpointIdentity.from(certificate: agent, trustDomain: "example.test") == .agent(name: "edge-2"))

        let secrets = try String(contentsOfFile: "\(out)/secrets.yaml", encoding: .utf8)
        let documents = secrets.components(separatedBy: "\n---\n")
        #expect(documents.count == 4)
        for name in ["porthole-ca", "porthole-control", "porthole-agent-edge-1", "porthole-agent-edge-2"] {
            #expect(secrets.contains("  name: \(name)\n"))
        }
        #expect(documents.allSatisfy { $0.contains("type: kubernetes.io/tls") && $0.contains("  tls.key: ") })
        #expect(documents.dropFirst().allSatisfy { $0.contains("  ca.crt: ") })
    }

    static func contents(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func addsAgentsToAnExistingCAWithoutTouchingIt() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.path
        #expect(try Self.makeCA(["--out", out, "--trust-domain", "example.test", "--agent", "edge"]).status == 0)
        let caCertificate = try Self.contents("\(out)/ca.crt")
        let caKey = try Self.contents("\(out)/ca.key")
        let control = try Self.contents("\(out)/control.crt")
        let edge = try Self.contents("\(out)/agent-edge.crt")

        let added = try Self.makeCA(["--out", out, "--agent", "edge2", "--namespace", "porthole-system"])
        #expect(added.status == 0, "\(added.standardError)")
        #expect(added.standardOutput.split(separator: "\n").map { String($0) } == [
            "\(out)/agent-edge2.crt", "\(out)/agent-edge2.key", "\(out)/agent-edge2.yaml", "\(out)/secrets.yaml",
        ])
        #expect(try Self.contents("\(out)/ca.crt") == caCertificate)
        #expect(try Self.contents("\(out)/ca.key") == caKey)
        #expect(try Self.contents("\(out)/control.crt") == control)
        #expect(try Self.contents("\(out)/agent-edge.crt") == edge)

        let verify = try runOpenSSL(["verify", "-CAfile", "\(out)/ca.crt", "\(out)/agent-edge2.crt"])
        #expect(verify.status == 0, "\(verify.output)")
        let certificate = try Certificate(pem: Self.contents("\(out)/agent-edge2.crt"))
        // The trust domain comes from the existing CA, not the default.
        #expect(EndpointIdentity.from(certificate: certificate, trustDomain: "example.test") == .agent(name: "edge2"))
        #expect(try Self.mode("\(out)/agent-edge2.key") == 0o600)
        #expect(try Self.mode("\(out)/agent-edge2.yaml") == 0o600)

        // The agent's own Secret file holds that agent only (no CA key to hand over by mistake).
        let own = try Self.contents("\(out)/agent-edge2.yaml")
        #expect(own.components(separatedBy: "\n---\n").count == 1)
        #expect(own.contains("  name: porthole-agent-edge2\n  namespace: porthole-system\n"))
        // secrets.yaml keeps what it had and gains the new agent.
        let secrets = try Self.contents("\(out)/secrets.yaml")
        #expect(secrets.components(separatedBy: "\n---\n").count == 4)
        for name in ["porthole-ca", "porthole-control", "porthole-agent-edge", "porthole-agent-edge2"] {
            #expect(secrets.contains("  name: \(name)\n"), "\(name)")
        }

        // A trust domain that contradicts the CA's is refused.
        let mismatch = try Self.makeCA(["--out", out, "--agent", "edge3", "--trust-domain", "other.test"])
        #expect(mismatch.status == 1)
        #expect(mismatch.standardError.contains("trust domain is example.test"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/agent-edge3.crt"))
    }

    @Test func refusesToReplaceAnAgentCredentialUnlessAsked() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.path
        #expect(try Self.makeCA(["--out", out, "--agent", "edge"]).status == 0)
        let edge = try Self.contents("\(out)/agent-edge.crt")

        let refused = try Self.makeCA(["--out", out, "--agent", "edge", "--agent", "edge2"])
        #expect(refused.status == 1)
        #expect(refused.standardError.hasPrefix("error: \(out)/agent-edge.crt already exists; nothing was written"))
        #expect(refused.standardError.contains("--reissue-agents"))
        #expect(try Self.contents("\(out)/agent-edge.crt") == edge)
        #expect(!FileManager.default.fileExists(atPath: "\(out)/agent-edge2.crt"))

        let reissued = try Self.makeCA(["--out", out, "--agent", "edge", "--reissue-agents"])
        #expect(reissued.status == 0, "\(reissued.standardError)")
        #expect(reissued.standardError.contains("the old one stays valid until it expires"))
        #expect(try Self.contents("\(out)/agent-edge.crt") != edge)
        let secrets = try Self.contents("\(out)/secrets.yaml")
        #expect(secrets.components(separatedBy: "  name: porthole-agent-edge\n").count == 2, "one edge Secret")
        let newKey = try Self.contents("\(out)/agent-edge.key")
        #expect(secrets.contains(Data(newKey.utf8).base64EncodedString()))
    }

    @Test func replacesACAOnlyWhenToldInWords() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.path
        #expect(try Self.makeCA(["--out", out, "--agent", "edge", "--agent", "old"]).status == 0)
        let before = try Self.contents("\(out)/ca.crt")

        let nothingToDo = try Self.makeCA(["--out", out])
        #expect(nothingToDo.status == 1)
        #expect(nothingToDo.standardError.contains("already holds a CA"))
        #expect(nothingToDo.standardError.contains("--replace-ca"))
        let force = try Self.makeCA(["--out", out, "--force"])
        #expect(force.status == 64)
        #expect(force.standardError.hasPrefix("error: --force is gone"))
        #expect(try Self.contents("\(out)/ca.crt") == before)

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(out)/ca.key")
        let replaced = try Self.makeCA(["--out", out, "--replace-ca", "--control", "ops", "--agent", "edge"])
        #expect(replaced.status == 0, "\(replaced.standardError)")
        #expect(try Self.contents("\(out)/ca.crt") != before)
        #expect(try Self.mode("\(out)/ca.key") == 0o600)
        // It says what stops working, and removes the old CA's credentials it did not issue again.
        #expect(replaced.standardError.contains("replacing the CA \"Porthole CA (porthole.local)\""))
        #expect(replaced.standardError.contains("control.crt, agent-edge.crt, agent-old.crt"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/agent-old.crt"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/agent-old.key"))
        for name in ["control", "agent-edge"] {
            let verify = try runOpenSSL(["verify", "-CAfile", "\(out)/ca.crt", "\(out)/\(name).crt"])
            #expect(verify.status == 0, "\(name): \(verify.output)")
        }
    }

    @Test func refusesHalfACAAndLeftoversWithoutOne() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.path
        #expect(try Self.makeCA(["--out", out, "--agent", "edge"]).status == 0)
        try FileManager.default.removeItem(atPath: "\(out)/ca.key")
        let half = try Self.makeCA(["--out", out, "--agent", "edge2"])
        #expect(half.status == 1)
        #expect(half.standardError.contains("\(out)/ca.crt exists but ca.key does not"))

        try FileManager.default.removeItem(atPath: "\(out)/ca.crt")
        let leftovers = try Self.makeCA(["--out", out, "--agent", "edge2"])
        #expect(leftovers.status == 1)
        #expect(leftovers.standardError.contains("has no CA but holds control.crt"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/ca.crt"))
    }

    @Test func helpAndUsageErrors() throws {
        let help = try Self.makeCA(["--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.hasPrefix("usage: make-ca"))
        for flag in ["--out", "--agent", "--reissue-agents", "--replace-ca", "--version"] {
            #expect(help.standardOutput.contains("  \(flag)"), "\(flag)")
        }
        let version = try Self.makeCA(["--version"])
        #expect(version.status == 0)
        #expect(version.standardOutput == "make-ca \(portholeVersion)\n")

        for arguments in [
            [], ["--out"], ["--bogus"], ["--out", "/tmp/x", "--agent", "a/b"], ["--out", "/tmp/x", "--out", "/tmp/y"],
            [
                "--out", "/tmp/x",
                "--validity-days", "0",
            ],
        ] {
            let run = try Self.makeCA(arguments)
            #expect(run.status == 64, "\(arguments)")
            #expect(run.standardError.hasPrefix("error: "), "\(arguments)")
            #expect(run.standardError.contains("usage: make-ca"), "\(arguments)")
        }
    }
}
