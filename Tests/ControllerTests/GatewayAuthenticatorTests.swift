import Foundation
import Testing
import Tunnel

@testable import Controller

@Suite struct GatewayAuthenticatorTests {
    static let issuer = "https://idp.example.com"
    static let authority = try! CertificateAuthority.create(commonName: "Porthole CA (porthole.local)", validity: 3600)

    static func certificate(_ identity: EndpointIdentity) -> Certificate {
        try! Self.authority.issueCredential(for: identity, trustDomain: "porthole.local", commonName: "x",
                                            validity: 3600).certificate
    }

    /// A compact JWS with these claims and a dummy signature: the authenticator reads only `iss`/`aud` unverified.
    static func token(_ claims: String, kid: String = "k1") -> String {
        Base64URL.encode(Array("{\"alg\":\"RS256\",\"kid\":\"\(kid)\"}".utf8)) + "."
            + Base64URL.encode(Array(claims.utf8)) + "." + Base64URL.encode([1, 2, 3])
    }

    static let idToken = token("{\"iss\":\"\(issuer)\",\"aud\":\"porthole\",\"sub\":\"a\"}")
    static let portholeToken = token("{\"iss\":\"porthole\",\"aud\":\"porthole-service\",\"sub\":\"ci\"}")

    static func identity(_ username: String = "alice@example.com") -> VerifiedIdentity {
        VerifiedIdentity(issuer: Self.issuer, subject: "a", username: username, groups: ["dev"], audience: "porthole",
                         expiresAt: Date().addingTimeInterval(60), issuedAt: nil, tokenID: nil,
                         tokenDigest: TokenDigest(of: "x"), algorithm: .rs256, keyID: "k1")
    }

    static func authenticator(
        _ configure: (inout GatewayConfiguration) -> Void = { _ in },
        verify: @escaping @Sendable (String, String) -> Result<VerifiedIdentity, TokenRefusal> = { _, _ in
            .success(GatewayAuthenticatorTests.identity())
        }
    ) -> GatewayAuthenticator {
        var configuration = GatewayConfiguration()
        configuration.trustedGateways = ["envoy"]
        configuration.issuers = [.init(issuer: Self.issuer, audiences: ["porthole"])]
        configure(&configuration)
        return GatewayAuthenticator(configuration: configuration, trustDomain: "porthole.local", verify: verify)
    }

    @Test func aPortholeServiceTokenIsLeftToPortholeAuthentication() {
        let outcome = Self.authenticator().authenticate(
            headers: [HTTPField("authorization", "Bearer \(Self.portholeToken)")], peerCertificate: nil)
        #expect(outcome == .notGateway)
    }

    @Test func anIdPTokenInAuthorizationIsVerified() {
        let outcome = Self.authenticator().authenticate(
            headers: [HTTPField("authorization", "Bearer \(Self.idToken)")], peerCertificate: nil)
        #expect(outcome == .identity(GatewayIdentity(username: "alice@example.com", email: "alice@example.com",
                                                     groups: ["dev"], issuer: Self.issuer, gateway: nil)))
    }

    @Test func noTokenAndNoGatewayPeerPassesOn() {
        #expect(Self.authenticator().authenticate(headers: [HTTPField("accept", "*/*")], peerCertificate: nil)
            == .notGateway)
    }

    @Test func headersAreTriedInTheConfiguredOrder() {
        let seen = TokenLog()
        let authenticator = Self.authenticator(verify: { _, token in
            seen.record(token)
            return .success(Self.identity())
        })
        let pomerium = Self.token("{\"iss\":\"\(Self.issuer)\",\"sub\":\"p\"}")
        _ = authenticator.authenticate(
            headers: [HTTPField("authorization", "Bearer \(Self.idToken)"),
                      HTTPField("x-pomerium-jwt-assertion", pomerium)],
            peerCertificate: nil)
        #expect(seen.tokens == [pomerium])
    }

    @Test func aTokenOfAnUnconfiguredIssuerIsRefusedWithoutEchoingIt() {
        let token = Self.token("{\"iss\":\"https://evil.example\",\"sub\":\"a\"}")
        guard case .refused(let status, let reason, let label) = Self.authenticator().authenticate(
            headers: [HTTPField("x-id-token", token)], peerCertificate: nil) else {
            Issue.record("not refused")
            return
        }
        #expect(status == 401 && label == "wrong_iss")
        #expect(!reason.contains("evil"))
    }

    @Test func aRefusalCarriesTheTokenRefusalReason() {
        let authenticator = Self.authenticator(verify: { _, _ in .failure(.expired) })
        #expect(authenticator.authenticate(headers: [HTTPField("x-id-token", Self.idToken)], peerCertificate: nil)
            == .refused(status: 401, reason: "invalid token: token has expired (exp)", label: "expired"))
        let noKeys = Self.authenticator(verify: { _, _ in .failure(.noKeys) })
        guard case .refused(503, _, "no_keys") = noKeys.authenticate(
            headers: [HTTPField("x-id-token", Self.idToken)], peerCertificate: nil) else {
            Issue.record("keys not fetched yet should be 503")
            return
        }
    }

    @Test func requireGatewayRefusesTokensFromOtherPeers() {
        let authenticator = Self.authenticator { $0.requireGateway = true }
        let headers = [HTTPField("authorization", "Bearer \(Self.idToken)")]
        guard case .refused(401, _, "not_gateway") = authenticator.authenticate(
            headers: headers, peerCertificate: Self.certificate(.gateway(name: "rogue"))) else {
            Issue.record("an untrusted gateway's token was accepted")
            return
        }
        guard case .identity(let identity) = authenticator.authenticate(
            headers: headers, peerCertificate: Self.certificate(.gateway(name: "envoy"))) else {
            Issue.record("the trusted gateway's token was refused")
            return
        }
        #expect(identity.gateway == "envoy")
    }

    @Test func trustedProxyHeadersCountOnlyFromATrustedGateway() {
        let authenticator = Self.authenticator { $0.trustedProxyHeaders = true }
        let headers = [HTTPField("x-forwarded-user", "bob"), HTTPField("x-forwarded-groups", "ops, dev"),
                       HTTPField("x-forwarded-groups", "sre")]
        #expect(authenticator.authenticate(headers: headers, peerCertificate: nil) == .notGateway)
        #expect(authenticator.authenticate(headers: headers, peerCertificate: Self.certificate(.gateway(name: "x")))
            == .notGateway)
        #expect(authenticator.authenticate(headers: headers, peerCertificate: Self.certificate(.gateway(name: "envoy")))
            == .identity(GatewayIdentity(username: "bob", email: nil, groups: ["ops", "dev", "sre"],
                                         issuer: GatewayIdentity.proxyHeadersIssuer, gateway: "envoy")))
        let off = Self.authenticator()
        guard case .refused(401, _, "no_identity") = off.authenticate(
            headers: headers, peerCertificate: Self.certificate(.gateway(name: "envoy"))) else {
            Issue.record("proxy headers counted without trustedProxyHeaders")
            return
        }
    }

    @Test func aTokenWinsOverProxyHeaders() {
        let authenticator = Self.authenticator { $0.trustedProxyHeaders = true }
        guard case .identity(let identity) = authenticator.authenticate(
            headers: [HTTPField("x-forwarded-user", "bob"), HTTPField("x-id-token", Self.idToken)],
            peerCertificate: Self.certificate(.gateway(name: "envoy"))) else {
            Issue.record("refused")
            return
        }
        #expect(identity.username == "alice@example.com")
    }
}

final class TokenLog: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String] = []
    func record(_ token: String) { self.lock.withLock { self.seen.append(token) } }
    var tokens: [String] { self.lock.withLock { self.seen } }
}

@Suite struct GatewayPathTests {
    @Test(arguments: [
        ("/clusters/edge/default", "edge default / -"),
        ("/clusters/edge/default/", "edge default / -"),
        ("/clusters/edge/default/api/v1/pods?watch=1", "edge default /api/v1/pods watch=1"),
        ("/clusters/prod-eu/k8s.main/apis/apps/v1", "prod-eu k8s.main /apis/apps/v1 -"),
    ])
    func parses(target: String, expected: String) throws {
        let parsed = try #require(GatewayPath(target: target))
        #expect("\(parsed.agent) \(parsed.service) \(parsed.path) \(parsed.query ?? "-")" == expected)
    }

    @Test(arguments: ["/clusters/edge", "/clusters//default/api", "/api/v1/pods", "/clusters/ed ge/x/y",
                      "/clustersx/edge/default"])
    func refuses(target: String) {
        #expect(GatewayPath(target: target) == nil)
    }
}

@Suite struct AuditRecordTests {
    @Test func aLineHasTheFieldsAndNoTokenMaterial() throws {
        var record = AuditRecord(requestID: "r1", source: "10.0.0.1", cluster: "edge", service: "kubernetes/default")
        record.set(identity: GatewayIdentity(username: "alice", email: nil, groups: ["dev"], issuer: "https://idp",
                                             gateway: "envoy"))
        record.set(attributes: try KubernetesRequestAttributes(
            method: "GET", path: "/api/v1/namespaces/dev/pods/api-0/log", query: nil))
        record.decision = "allow"
        record.reason = "dev grants logs"
        let line = record.json
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["time", "event", "requestID", "user", "groups", "issuer", "gateway", "source", "cluster", "service",
                    "namespace", "resource", "subresource", "name", "verb", "operation", "decision", "reason"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["operation"] as? String == "logs")
        #expect(object["subresource"] as? String == "log")
        #expect(object["event"] as? String == "decision")
        #expect(!line.contains("Bearer") && !line.contains("eyJ"))
    }

    @Test func aStreamWritesItsStartAndOneEndLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try AuditLog(path: path)
        do {
            let stream = StreamAudit(log: log, record: AuditRecord(requestID: "r2", user: "alice", decision: "allow"))
            stream.bytesIn = 3
            stream.bytesOut = 10
            stream.status = 200
            stream.finish()
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].contains("\"event\":\"stream_start\""))
        #expect(lines[1].contains("\"event\":\"stream_end\"") && lines[1].contains("\"bytesOut\":10")
            && lines[1].contains("\"status\":200"))
    }
}

@Suite struct GatewayConfigurationTests {
    @Test func theBriefsExampleIsValid() throws {
        let json = """
            {"trustedGateways": ["envoy"], "requireGateway": false, "trustedProxyHeaders": false,
             "tokenHeaders": ["x-pomerium-jwt-assertion", "authorization", "x-id-token"],
             "issuers": [{"issuer": "https://127.0.0.1:9999", "discovery": true, "jwksURL": null, "jwksFile": null,
                          "caFile": "idp-ca.crt", "audiences": ["porthole"], "acceptAuthorizedParty": false,
                          "algorithms": ["RS256", "ES256", "EdDSA"], "usernameClaim": "email",
                          "groupsClaim": "groups", "groupPrefix": "", "leewaySeconds": 60, "refreshSeconds": 300,
                          "minRefetchSeconds": 30}],
             "policyFile": "policy.json", "auditLog": "audit.jsonl"}
            """
        let configuration = try GatewayConfigurationFile.decode(Data(json.utf8), path: "gateway.json")
        #expect(configuration.issuers[0].discovery && configuration.issuers[0].caFile == "idp-ca.crt")
    }

    @Test(arguments: [
        ("{\"issuers\": [{\"issuer\": \"https://i\", \"audiences\": [], \"discovery\": true}]}",
         "gateway.json:1:38: issuers[0].audiences"),
        ("{\"issuers\": [{\"issuer\": \"https://i\", \"audiences\": [\"a\"], \"algorithms\": [\"HS256\"]}]}",
         "issuers[0].algorithms[0]"),
        ("{\"requireGateway\": true}", "requireGateway"),
        ("{\"tokenHeaders\": [\"accept\"]}", "tokenHeaders[0]"),
        ("{\"issuer\": []}", "issuer: unknown field"),
        ("{\"issuers\": [{\"issuer\": \"https://i\", \"audiences\": [\"a\"], \"jwksFile\": \"k\", \"discovery\": true}]}",
         "issuers[0].discovery"),
    ])
    func errorsNameTheFileAndField(json: String, expected: String) {
        do {
            _ = try GatewayConfigurationFile.decode(Data(json.utf8), path: "gateway.json")
            Issue.record("accepted \(json)")
        } catch {
            #expect("\(error)".hasPrefix("gateway.json"))
            #expect("\(error)".contains(expected), "\(error)")
        }
    }
}
