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

    @Test func refusesToOverwriteWithoutForce() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.path
        #expect(try Self.makeCA(["--out", out]).status == 0)
        let before = try String(contentsOfFile: "\(out)/ca.crt", encoding: .utf8)

        let refused = try Self.makeCA(["--out", out])
        #expect(refused.status == 1)
        #expect(refused.standardError.hasPrefix("error: refusing to overwrite"))
        #expect(try String(contentsOfFile: "\(out)/ca.crt", encoding: .utf8) == before)

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(out)/ca.key")
        let forced = try Self.makeCA(["--out", out, "--force", "--control", "ops"])
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(try String(contentsOfFile: "\(out)/ca.crt", encoding: .utf8) != before)
        #expect(try Self.mode("\(out)/ca.key") == 0o600)
    }

    @Test func helpAndUsageErrors() throws {
        let help = try Self.makeCA(["--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.hasPrefix("usage: make-ca"))

        for arguments in [
            [], ["--out"], ["--bogus"], ["--out", "/tmp/x", "--agent", "a/b"],
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
