import Foundation
import Testing

@testable import Controller
@testable import Tunnel

@Suite struct ServiceTokenTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func claims(expiresIn seconds: Int = 600) -> ServiceTokenClaims {
        ServiceTokenClaims(
            iss: "https://porthole.example", aud: "porthole-service", sub: "alice", iat: Int(now.timeIntervalSince1970),
            exp: Int(now.timeIntervalSince1970) + seconds, jti: "4f1c", type: "jenkins", agent: "edge-1",
            service: "ci")
    }

    @Test func signsAndVerifies() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let token = try ServiceToken.sign(Self.claims(), key: authority.key)
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        #expect(!token.contains("=") && !token.contains("+") && !token.contains("/"))
        let header = ServiceToken.decodeBase64URL(parts[0]).map { String(decoding: $0, as: UTF8.self) }
        #expect(header == #"{"alg":"ES256","typ":"JWT"}"#)
        #expect(ServiceToken.decodeBase64URL(parts[2])?.count == 64)
        let claims = try ServiceToken.verify(
            token, certificate: authority.certificate, audience: "porthole-service", now: Self.now)
        #expect(claims == Self.claims())
    }

    @Test func repeatedSignaturesVerifyAgainstReloadedCertificate() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let reloaded = try Certificate(pem: authority.certificate.pem)
        for _ in 0..<50 {  // some r or s values have leading zero bytes that must survive the padding
            let token = try ServiceToken.sign(Self.claims(), key: authority.key)
            _ = try ServiceToken.verify(token, certificate: reloaded, audience: "porthole-service", now: Self.now)
        }
    }

    @Test func rejectsExpiredToken() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let token = try ServiceToken.sign(Self.claims(expiresIn: 60), key: authority.key)
        #expect(throws: ServiceTokenError.expired) {
            try ServiceToken.verify(
                token, certificate: authority.certificate, audience: "porthole-service",
                now: Self.now.addingTimeInterval(60))
        }
    }

    @Test func rejectsWrongAudience() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let token = try ServiceToken.sign(Self.claims(), key: authority.key)
        #expect(throws: ServiceTokenError.wrongAudience) {
            try ServiceToken.verify(token, certificate: authority.certificate, audience: "elsewhere", now: Self.now)
        }
    }

    @Test func rejectsTamperedClaimsAndForeignSigner() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let token = try ServiceToken.sign(Self.claims(), key: authority.key)
        let parts = token.split(separator: ".").map(String.init)
        var forged = Self.claims()
        forged.agent = "edge-2"
        let forgedPayload = ServiceToken.base64URL(Array(try JSONEncoder().encode(forged)))
        #expect(throws: ServiceTokenError.badSignature) {
            try ServiceToken.verify(
                [parts[0], forgedPayload, parts[2]].joined(separator: "."), certificate: authority.certificate,
                audience: "porthole-service", now: Self.now)
        }

        let stranger = try CertificateAuthority.create(commonName: "Other CA", validity: 3600)
        #expect(throws: ServiceTokenError.badSignature) {
            try ServiceToken.verify(
                token, certificate: stranger.certificate, audience: "porthole-service", now: Self.now)
        }
        #expect(throws: ServiceTokenError.badSignature) {
            try ServiceToken.verify(
                [parts[0], parts[1], String(parts[2].dropLast(4))].joined(separator: "."),
                certificate: authority.certificate, audience: "porthole-service", now: Self.now)
        }
    }

    @Test func rejectsAlgNoneAndOtherAlgorithms() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let payload = ServiceToken.base64URL(Array(try JSONEncoder().encode(Self.claims())))
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS256","typ":"JWT"}"#] {
            let encodedHeader = ServiceToken.base64URL(Array(header.utf8))
            for signature in ["", "c2ln"] {
                #expect(throws: ServiceTokenError.unsupportedAlgorithm) {
                    try ServiceToken.verify(
                        "\(encodedHeader).\(payload).\(signature)", certificate: authority.certificate,
                        audience: "porthole-service", now: Self.now)
                }
            }
        }
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!!.e30.AAAA", "e30.e30.AAAA"])
    func rejectsMalformedTokens(token: String) throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        #expect(throws: ServiceTokenError.self) {
            try ServiceToken.verify(
                token, certificate: authority.certificate, audience: "porthole-service", now: Self.now)
        }
    }

    @Test func errorDescriptionsAreUserFacing() {
        #expect(ServiceTokenError.expired.description == "service token has expired")
        #expect(ServiceTokenError.malformed("bad header").description.contains("bad header"))
    }
}
