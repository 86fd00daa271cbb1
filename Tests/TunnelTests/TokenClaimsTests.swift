import Foundation
import Testing

@testable import Tunnel

/// `TokenVerifier.validateClaims` as a pure function: a claims object, a configuration and a clock.
@Suite struct TokenClaimsTests {
    typealias T = JOSETestTokens

    static let digest = TokenDigest(of: "not a token")

    static func validate(
        _ overrides: [String: Any?] = [:], now: Date = T.now,
        _ configure: (inout TokenVerifier.Configuration) -> Void = { _ in }
    ) -> Result<VerifiedIdentity, TokenRefusal> {
        var configuration = TokenVerifier.Configuration(issuer: T.issuer, audiences: ["porthole"])
        configure(&configuration)
        let members = JSONValue.parse(T.json(T.claims(overrides)))!.object!
        return Result { () throws(TokenRefusal) in
            try TokenVerifier(configuration: configuration).validateClaims(
                JWTClaims(members: members), now: now, tokenDigest: Self.digest, algorithm: .rs256, keyID: "k")
        }
    }

    static func refusal(_ result: Result<VerifiedIdentity, TokenRefusal>) -> TokenRefusal? {
        if case .failure(let refusal) = result { refusal } else { nil }
    }

    @Test func acceptsGoodClaims() throws {
        let identity = try Self.validate().get()
        #expect(identity.issuer == T.issuer && identity.subject == "f3a9c1" && identity.username == "alice@example.com")
        #expect(identity.groups == ["dev", "oncall"] && identity.tokenID == "id-1" && identity.keyID == "k")
        #expect(identity.issuedAt == T.now.addingTimeInterval(-10) && identity.tokenDigest == Self.digest)
    }

    @Test func issuerMustMatchExactly() {
        #expect(Self.refusal(Self.validate(["iss": "https://evil.example/realms/dev"])) == .wrongIssuer)
        #expect(Self.refusal(Self.validate(["iss": T.issuer + "/"])) == .wrongIssuer)
        #expect(Self.refusal(Self.validate(["iss": T.issuer.uppercased()])) == .wrongIssuer)
        #expect(Self.refusal(Self.validate(["iss": ["x": 1]])) == .wrongIssuer)
        #expect(Self.refusal(Self.validate(["iss": nil])) == .missingClaim("iss"))
    }

    @Test func audienceStringArrayOrAuthorizedParty() throws {
        #expect(Self.refusal(Self.validate(["aud": "someone-else"])) == .wrongAudience)
        #expect(Self.refusal(Self.validate(["aud": nil])) == .wrongAudience)
        #expect(Self.refusal(Self.validate(["aud": []])) == .wrongAudience)
        #expect(try Self.validate(["aud": ["account", "porthole"]]).get().audience == "porthole")
        #expect(Self.refusal(Self.validate(["aud": ["porthole", 7]])) == .invalidClaim("aud"))
        #expect(Self.refusal(Self.validate(["aud": 7])) == .invalidClaim("aud"))
        // azp counts only when configured.
        #expect(Self.refusal(Self.validate(["aud": "account", "azp": "porthole"])) == .wrongAudience)
        let viaParty = Self.validate(["aud": "account", "azp": "porthole"]) { $0.acceptsAuthorizedParty = true }
        #expect(try viaParty.get().audience == "porthole")
        let wrongParty = Self.validate(["aud": "account", "azp": "other"]) { $0.acceptsAuthorizedParty = true }
        #expect(Self.refusal(wrongParty) == .wrongAudience)
        // Several accepted audiences; none configured accepts nothing.
        #expect(try Self.validate(["aud": "gateway-client"]) { $0.audiences = ["porthole", "gateway-client"] }.get()
            .audience == "gateway-client")
        #expect(Self.refusal(Self.validate { $0.audiences = [] }) == .wrongAudience)
    }

    @Test func expiryIsRequiredAndHasLeeway() throws {
        #expect(Self.refusal(Self.validate(["exp": nil])) == .missingClaim("exp"))
        #expect(Self.refusal(Self.validate(["exp": "1800000300"])) == .invalidClaim("exp"))
        #expect(Self.refusal(Self.validate(["exp": true])) == .invalidClaim("exp"))
        let exp = T.now.timeIntervalSince1970 + 300
        _ = try Self.validate(now: Date(timeIntervalSince1970: exp + 59)).get()
        #expect(Self.refusal(Self.validate(now: Date(timeIntervalSince1970: exp + 60))) == .expired)
        #expect(Self.refusal(Self.validate(now: Date(timeIntervalSince1970: exp + 1)) { $0.leeway = 0 }) == .expired)
        #expect(Self.refusal(Self.validate(now: Date(timeIntervalSince1970: exp)) { $0.leeway = 0 }) == .expired)
        _ = try Self.validate(["exp": T.now.timeIntervalSince1970 + 0.5]).get()  // NumericDate may be fractional
    }

    @Test func notBeforeAndIssuedAtWhenPresent() throws {
        let now = T.now.timeIntervalSince1970
        #expect(Self.refusal(Self.validate(["nbf": now + 61])) == .notYetValid)
        _ = try Self.validate(["nbf": now + 60]).get()
        _ = try Self.validate(["nbf": now - 3600]).get()
        #expect(Self.refusal(Self.validate(["nbf": "soon"])) == .invalidClaim("nbf"))
        #expect(Self.refusal(Self.validate(["iat": now + 61])) == .issuedInFuture)
        _ = try Self.validate(["iat": now + 60]).get()
        #expect(Self.refusal(Self.validate(["iat": [now]])) == .invalidClaim("iat"))
        #expect(try Self.validate(["iat": nil]).get().issuedAt == nil)
    }

    @Test func usernameClaimIsConfigurable() throws {
        #expect(try Self.validate { $0.usernameClaim = "sub" }.get().username == "f3a9c1")
        let preferred = Self.validate(["preferred_username": "alice"]) { $0.usernameClaim = "preferred_username" }
        #expect(try preferred.get().username == "alice")
        #expect(Self.refusal(Self.validate { $0.usernameClaim = "preferred_username" })
            == .missingClaim("preferred_username"))
        #expect(Self.refusal(Self.validate(["email": ""])) == .invalidClaim("email"))
        #expect(Self.refusal(Self.validate(["email": ["a@b"]])) == .invalidClaim("email"))
        #expect(Self.refusal(Self.validate(["sub": nil])) == .missingClaim("sub"))
        #expect(Self.refusal(Self.validate(["jti": 5])) == .invalidClaim("jti"))
    }

    @Test func groupsFromArraysPathsAndJoinedStrings() throws {
        let keycloak = Self.validate(["groups": nil, "realm_access": ["roles": ["admin", "dev"]]]) {
            $0.groupsClaim = "realm_access.roles"
            $0.groupPrefix = "oidc:"
        }
        #expect(try keycloak.get().groups == ["oidc:admin", "oidc:dev"])
        #expect(try Self.validate(["groups": "dev, ops,,sre "]).get().groups == ["dev", "ops", "sre"])
        #expect(try Self.validate(["groups": nil]).get().groups == [])
        #expect(try Self.validate(["groups": NSNull()]).get().groups == [])
        #expect(try Self.validate { $0.groupsClaim = nil }.get().groups == [])
        #expect(Self.refusal(Self.validate(["groups": ["dev", 3]])) == .invalidClaim("groups"))
        #expect(Self.refusal(Self.validate(["groups": ["dev": true]])) == .invalidClaim("groups"))
        // A claim whose name contains dots is read whole before it is read as a path.
        let namespaced = Self.validate(["https://example.com/groups": ["x"]]) {
            $0.groupsClaim = "https://example.com/groups"
        }
        #expect(try namespaced.get().groups == ["x"])
        let flat = Self.validate(["realm_access": "flat"]) { $0.groupsClaim = "realm_access.roles" }
        #expect(try flat.get().groups == [])
    }
}
