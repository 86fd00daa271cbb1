import Foundation
import Testing

@testable import Tunnel

/// Runs `/usr/bin/openssl` with `arguments`; returns its exit status and combined output.
func runOpenSSL(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("porthole-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct CertificateAuthorityTests {
    @Test func issuedLeafPassesOpenSSLVerifyAndKeepsItsNames() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let leaf = try authority.issueWithNewKey(
            CertificateSpec(
                commonName: "controller", uris: ["spiffe://porthole.local/control/admin"],
                dnsNames: ["controller.test", "localhost"], ipAddresses: ["127.0.0.1", "::1"], validity: 600,
                usage: .serverAndClient))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let caPath = directory.appendingPathComponent("ca.crt").path
        let leafPath = directory.appendingPathComponent("leaf.crt").path
        try authority.certificate.pem.write(toFile: caPath, atomically: true, encoding: .utf8)
        try leaf.certificate.pem.write(toFile: leafPath, atomically: true, encoding: .utf8)

        for purpose in ["sslserver", "sslclient"] {
            let result = try runOpenSSL(["verify", "-purpose", purpose, "-CAfile", caPath, leafPath])
            #expect(result.status == 0, "\(result.output)")
        }
        let text = try runOpenSSL(["x509", "-noout", "-text", "-in", leafPath]).output
        #expect(text.contains("Version: 3"))
        #expect(text.contains("ecdsa-with-SHA256"))
        #expect(text.contains("X509v3 Basic Constraints: critical"))
        #expect(text.contains("X509v3 Key Usage: critical"))
        #expect(text.contains("X509v3 Subject Key Identifier"))
        #expect(text.contains("X509v3 Authority Key Identifier"))

        #expect(leaf.certificate.commonName == "controller")
        #expect(leaf.certificate.uriSANs == ["spiffe://porthole.local/control/admin"])
        #expect(leaf.certificate.dnsSANs == ["controller.test", "localhost"])
        #expect(leaf.certificate.ipSANs == ["127.0.0.1", "::1"])
        #expect(!leaf.certificate.isCertificateAuthority)
        #expect(authority.certificate.isCertificateAuthority)
        #expect(abs(leaf.certificate.notAfter.timeIntervalSince(leaf.certificate.notBefore) - 600) < 1)
        #expect(abs(leaf.certificate.notBefore.timeIntervalSinceNow + 300) < 60)
    }

    @Test func caCertificateIsSelfSignedWithCAExtensions() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let caPath = directory.appendingPathComponent("ca.crt").path
        try authority.certificate.pem.write(toFile: caPath, atomically: true, encoding: .utf8)
        #expect(try runOpenSSL(["verify", "-CAfile", caPath, caPath]).status == 0)
        let text = try runOpenSSL(["x509", "-noout", "-text", "-in", caPath]).output
        #expect(text.contains("CA:TRUE"))
        #expect(text.contains("Certificate Sign, CRL Sign"))
        #expect(authority.certificate.commonName == "Test CA")
    }

    @Test func serialsAreRandomPositiveAndAtLeast128Bits() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let spec = CertificateSpec(commonName: "a", dnsNames: ["a.test"], validity: 60, usage: .server)
        let serials = try (0..<8).map { _ in try authority.issueWithNewKey(spec).certificate.serialNumberHex }
        #expect(Set(serials).count == serials.count)
        for serial in serials {
            #expect(serial.count == 32)
            #expect(!serial.hasPrefix("-"))
        }
    }

    @Test func explicitNotBeforeMakesExpiredCertificates() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let start = Date(timeIntervalSince1970: 1_600_000_000)
        let leaf = try authority.issueWithNewKey(
            CertificateSpec(commonName: "old", dnsNames: ["old.test"], validity: 60, notBefore: start, usage: .client))
        #expect(leaf.certificate.notBefore == start)
        #expect(leaf.certificate.notAfter == start.addingTimeInterval(60))
    }

    @Test func pemRoundTripsAndLoadsWithMatchingKey() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        #expect(authority.key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let loaded = try CertificateAuthority(certificatePEM: authority.certificate.pem, keyPEM: authority.key.pem)
        #expect(loaded.certificate.pem == authority.certificate.pem)
        #expect(loaded.key.pem == authority.key.pem)
        let leaf = try loaded.issueWithNewKey(
            CertificateSpec(commonName: "x", uris: ["spiffe://porthole.local/agent/x"], validity: 60, usage: .client))
        let chain = try Certificate.chain(pem: leaf.certificate.pem + authority.certificate.pem)
        #expect(chain.map(\.commonName) == ["x", "Test CA"])
        #expect(try PrivateKey(pem: leaf.key.pem).pem == leaf.key.pem)
    }

    @Test func loadingRejectsMismatchedKeyAndNonCACertificate() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let other = try PrivateKey.generateP256()
        #expect(throws: OpenSSLError.self) {
            try CertificateAuthority(certificatePEM: authority.certificate.pem, keyPEM: other.pem)
        }
        let leaf = try authority.issueWithNewKey(
            CertificateSpec(commonName: "x", dnsNames: ["x.test"], validity: 60, usage: .server))
        #expect(throws: OpenSSLError.self) {
            try CertificateAuthority(certificatePEM: leaf.certificate.pem, keyPEM: leaf.key.pem)
        }
    }

    @Test func malformedInputThrows() throws {
        #expect(throws: OpenSSLError.self) { try Certificate(pem: "not a certificate") }
        #expect(throws: OpenSSLError.self) { try Certificate.chain(pem: "") }
        #expect(throws: OpenSSLError.self) { try PrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n") }
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        #expect(throws: OpenSSLError.self) {
            try authority.issueWithNewKey(
                CertificateSpec(commonName: "x", ipAddresses: ["not-an-ip"], validity: 60, usage: .server))
        }
        #expect(throws: OpenSSLError.self) {
            try authority.issueWithNewKey(CertificateSpec(commonName: "no names", validity: 60, usage: .server))
        }
    }

    @Test func kubernetesSecretCarriesBase64PEM() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let agent = try authority.issueCredential(
            for: .agent(name: "edge-1"), trustDomain: "porthole.local", commonName: "edge-1", validity: 60)
        let yaml = KubernetesSecret.tls(
            name: KubernetesSecret.agentName("edge-1"), namespace: "porthole", certificate: agent.certificate,
            key: agent.key, ca: authority.certificate)
        #expect(yaml.contains("name: porthole-agent-edge-1\n  namespace: porthole\n"))
        #expect(yaml.contains("type: kubernetes.io/tls"))
        let caLine = "  ca.crt: " + Data(authority.certificate.pem.utf8).base64EncodedString()
        #expect(yaml.split(separator: "\n").contains { $0 == caLine })
        #expect(KubernetesSecret.agentName("Edge_2.x") == "porthole-agent-edge-2-x")
        #expect(agent.certificate.uriSANs == ["spiffe://porthole.local/agent/edge-1"])
    }
}
