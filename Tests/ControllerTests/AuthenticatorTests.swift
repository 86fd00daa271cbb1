import Foundation
import Testing
import Tunnel
@testable import Controller

/// Who a service-listener request comes from: a service token first, else the client certificate; verified tokens
/// are remembered until they expire.
@Suite struct AuthenticatorTests {
    let authority: CertificateAuthority
    let authenticator: Authenticator

    init() throws {
        self.authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        self.authenticator = Authenticator(trustDomain: "porthole.local", tokenVerifier: self.authority.certificate)
    }

    func token(sub: String = "ci-bot", type: String = "x-web", agent: String = "edge", service: String = "web",
               lifetime: Int = 600, audience: String = Authenticator.tokenAudience) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        return try ServiceToken.sign(
            ServiceTokenClaims(iss: ControlAPI.tokenIssuer, aud: audience, sub: sub, iat: now - 10, exp: now + lifetime,
                               jti: RandomID.make(), type: type, agent: agent, service: service),
            key: self.authority.key)
    }

    func certificate(_ identity: EndpointIdentity, commonName: String = "alice") throws -> Certificate {
        try self.authority.issueCredential(for: identity, trustDomain: "porthole.local", commonName: commonName,
                                           validity: 600).certificate
    }

    @Test func aTokenWinsOverTheClientCertificate() throws {
        let certificate = try self.certificate(.kubernetes(agent: "edge", service: "default"))
        let route = try self.authenticator.authenticate(authorization: "Bearer \(try self.token())",
                                                        peerCertificate: certificate).get()
        #expect(route == Route(agent: "edge", serviceType: "x-web", serviceName: "web", user: "ci-bot"))
    }

    @Test func withoutATokenTheCertificateDecides() throws {
        let kubernetes = try self.authenticator.authenticate(
            authorization: nil, peerCertificate: try self.certificate(.kubernetes(agent: "edge", service: "default")))
        #expect(try kubernetes.get() == Route(agent: "edge", serviceType: "kubernetes", serviceName: "default",
                                              user: "alice"))
        let service = try self.authenticator.authenticate(
            authorization: nil, peerCertificate: try self.certificate(.service(type: "x-web", agent: "a", service: "b")))
        #expect(try service.get() == Route(agent: "a", serviceType: "x-web", serviceName: "b", user: "alice"))
    }

    @Test func aBadTokenIsRefusedEvenWithAGoodCertificate() throws {
        let certificate = try self.certificate(.kubernetes(agent: "edge", service: "default"))
        guard case .failure(let refusal) = self.authenticator.authenticate(authorization: "Bearer not.a.token",
                                                                           peerCertificate: certificate) else {
            Issue.record("accepted")
            return
        }
        #expect(refusal.status == 401 && refusal.label == "token")
    }

    @Test(arguments: [
        (nil as String?, 401, "none"), ("Basic dXNlcjpwdw==", 401, "scheme"), ("Bearer ", 401, "empty_token"),
    ])
    func refusalsWithoutACertificate(authorization: String?, status: Int, label: String) {
        guard case .failure(let refusal) = self.authenticator.authenticate(authorization: authorization,
                                                                           peerCertificate: nil) else {
            Issue.record("accepted")
            return
        }
        #expect(refusal.status == status && refusal.label == label)
    }

    @Test func certificatesOfOtherEndpointTypesAreRefused() throws {
        for identity in [EndpointIdentity.agent(name: "edge"), .control(name: "ops")] {
            guard case .failure(let refusal) = self.authenticator.authenticate(
                authorization: nil, peerCertificate: try self.certificate(identity)) else {
                Issue.record("accepted \(identity)")
                continue
            }
            #expect(refusal.status == 403 && refusal.label == "wrong_identity")
        }
    }

    @Test func anExpiredTokenStillNamesItsServiceTypeSoTheErrorTakesItsShape() throws {
        let expired = try self.token(type: "kubernetes", lifetime: -60)
        guard case .failure(let refusal) = self.authenticator.authenticate(authorization: "Bearer \(expired)",
                                                                           peerCertificate: nil) else {
            Issue.record("accepted")
            return
        }
        #expect(refusal.status == 401 && refusal.serviceType == "kubernetes")
        #expect(refusal.reason.contains("expired"))
    }

    @Test func aTokenForAnotherAudienceIsRefused() throws {
        let token = try self.token(audience: "someone-else")
        #expect(throws: Refusal.self) {
            try self.authenticator.authenticate(authorization: "Bearer \(token)", peerCertificate: nil).get()
        }
    }

    @Test func verifiedTokensAreRememberedUntilTheyExpire() throws {
        let token = try self.token()
        _ = try self.authenticator.authenticate(authorization: "Bearer \(token)", peerCertificate: nil).get()
        let cached = try #require(self.authenticator.verifiedTokens.claims(for: token))
        #expect(cached.sub == "ci-bot")
        // Past its expiry the entry is gone, and the token would be verified (and refused) again.
        let later = Date(timeIntervalSince1970: Double(cached.exp) + 1)
        #expect(self.authenticator.verifiedTokens.claims(for: token, now: later) == nil)
        #expect(self.authenticator.verifiedTokens.claims(for: token) == nil)
    }

    @Test func aForgedTokenIsNeverRemembered() throws {
        let other = try CertificateAuthority.create(commonName: "Other CA", validity: 3600)
        let now = Int(Date().timeIntervalSince1970)
        let forged = try ServiceToken.sign(
            ServiceTokenClaims(iss: ControlAPI.tokenIssuer, aud: Authenticator.tokenAudience, sub: "mallory",
                               iat: now, exp: now + 600, jti: "x", type: "x-web", agent: "edge", service: "web"),
            key: other.key)
        _ = self.authenticator.authenticate(authorization: "Bearer \(forged)", peerCertificate: nil)
        #expect(self.authenticator.verifiedTokens.claims(for: forged) == nil)
    }
}
