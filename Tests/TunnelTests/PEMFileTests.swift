import Foundation
import Testing

@testable import Tunnel

@Suite struct PEMFileTests {
    private func withFile(_ contents: String, _ body: (String) throws -> Void) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ca.crt").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        try body(path)
    }

    @Test func aKeyWhereACertificateBelongsIsNamedWithTheFile() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        try self.withFile(authority.key.pem) { path in
            #expect(throws: PEMFileError(path: path, role: "CA certificate",
                                         problem: .wrongContent(expected: "CERTIFICATE", found: "PRIVATE KEY"))) {
                try PEMFile.certificates(path, role: "CA certificate")
            }
            do {
                _ = try PEMFile.certificates(path, role: "CA certificate")
            } catch {
                #expect("\(error)" == "\(path) (the CA certificate): expected a PEM CERTIFICATE, found a PRIVATE KEY")
            }
        }
    }

    @Test func aCertificateWhereAKeyBelongsIsNamed() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        try self.withFile(authority.certificate.pem) { path in
            #expect(throws: PEMFileError(path: path, role: "agent key",
                                         problem: .wrongContent(expected: "PRIVATE KEY", found: "CERTIFICATE"))) {
                try PEMFile.privateKey(path, role: "agent key")
            }
            let certificates = try PEMFile.certificates(path, role: "CA certificate")
            #expect(certificates.count == 1)
        }
    }

    @Test func aFileWithoutPEMSaysSo() throws {
        try self.withFile("{\"not\": \"pem\"}\n") { path in
            do {
                _ = try PEMFile.certificates(path, role: "CA certificate")
                Issue.record("no error")
            } catch {
                #expect("\(error)" == "\(path) (the CA certificate): expected a PEM CERTIFICATE, found no PEM block")
            }
        }
    }

    @Test func aDamagedBlockNamesTheFileAndOpenSSLsReason() throws {
        try self.withFile("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") { path in
            do {
                _ = try PEMFile.certificates(path, role: "CA certificate")
                Issue.record("no error")
            } catch {
                #expect("\(error)".hasPrefix("\(path) (the CA certificate): the PEM CERTIFICATE cannot be read: "))
            }
        }
    }

    @Test func keysOfEveryKindMatchPrivateKey() throws {
        let key = try PrivateKey.generateP256()
        let traditional = key.pem.replacingOccurrences(of: "PRIVATE KEY", with: "EC PRIVATE KEY")
        #expect(PEMFile.labels(in: traditional) == ["EC PRIVATE KEY"])
        try self.withFile(key.pem) { path in
            let loaded = try PEMFile.privateKey(path, role: "agent key")
            #expect(loaded.pem == key.pem)
        }
    }
}
