import Dispatch
import Testing
import Tunnel
@testable import Controller

/// A session that only answers routing questions; opening a stream is not part of deciding.
final class FakeSession: RoutableSession, @unchecked Sendable {
    let id: String
    let services: Set<String>

    init(id: String = "s1", services: Set<String> = ["kubernetes/default"]) {
        self.id = id
        self.services = services
    }

    func offers(type: String, name: String) -> Bool { self.services.contains("\(type)/\(name)") }

    func openStream(headers: [HTTPField], hasBody: Bool, delegate: TunnelStreamDelegate,
                    delegateQueue: DispatchQueue) -> TunnelStream {
        preconditionFailure("the pipeline decides; it never opens streams")
    }
}

struct FakeDirectory: SessionDirectory {
    var sessions: [String: FakeSession] = ["edge": FakeSession()]
    func routableSession(of agent: String) -> (any RoutableSession)? { self.sessions[agent] }
}

struct DenyAll: RequestAuthorizer {
    func decide(_ request: UserRequest, route: Route) -> AuthorizationDecision {
        AuthorizationDecision(isAllowed: false, reason: "no rule grants \(route.user) anything")
    }
}

@Suite struct RequestPipelineTests {
    static let alice = Route(agent: "edge", serviceType: "kubernetes", serviceName: "default", user: "alice")

    /// Tokens `good` (alice on edge's kubernetes/default), `ghost` (an agent that is not connected) and `other`
    /// (a service edge lacks); anything else is refused as the authenticator would.
    static func pipeline(budget: CancellationBudget? = nil, authorizer: any RequestAuthorizer = CredentialScopeAuthorizer(),
                         sessions: FakeDirectory = FakeDirectory(),
                         routes: LocalRoutes = LocalRoutes([WellKnownRoute.route(serviceURL: "https://p:1",
                                                                                 instance: "c1")])) -> RequestPipeline {
        RequestPipeline(
            authenticate: { authorization, certificate in
                switch authorization {
                case "Bearer good": .success(Self.alice)
                case "Bearer ghost": .success(Route(agent: "ghost", serviceType: "kubernetes", serviceName: "default",
                                                    user: "alice"))
                case "Bearer other": .success(Route(agent: "edge", serviceType: "x-web", serviceName: "other",
                                                    user: "alice"))
                case nil: .failure(Refusal(status: 401, reason: "no credentials", label: "none"))
                default: .failure(Refusal(status: 401, reason: "invalid service token", label: "token"))
                }
            },
            budget: budget, authorizer: authorizer, sessions: sessions, localRoutes: routes)
    }

    static func h1(_ method: String = "GET", _ target: String = "/api/v1/pods", headers: [(String, String)] = [],
                   token: String? = "good", version: String = "HTTP/1.1", host: Bool = true) -> UserRequest {
        var fields = HTTPHeaders()
        if host { fields.add(name: "Host", value: "p:1") }
        if let token { fields.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { fields.add(name: name, value: value) }
        return UserRequest(http1: HTTPRequestHead(method: method, target: target, version: version, headers: fields),
                           requestID: "r1", upgrade: nil, hasBody: false, peerCertificate: nil, peerHost: "192.0.2.1")
    }

    static func h2(_ fields: [HTTPField], endStream: Bool = true) -> UserRequest {
        UserRequest(http2: fields, requestID: "r2", endStream: endStream, peerCertificate: nil, peerHost: "::1")
    }

    static func status(_ outcome: PipelineOutcome) -> Int? {
        switch outcome {
        case .refuse(let refusal): refusal.error.status
        case .respond(let response): response.status
        case .forward, .collect: nil
        }
    }

    // MARK: Checks

    @Test(arguments: [
        (Self.h1("CONNECT", "/x"), 405), (Self.h1(host: false), 400), (Self.h1(version: "HTTP/1.0", host: false), nil),
        (Self.h1("GET", "/../etc"), 400), (Self.h1("GET", "http://evil/"), 400),
        (Self.h1(headers: [("Authorization", "Bearer good")]), 400),
        (Self.h1(headers: [("Host", "again")]), 400),
    ] as [(UserRequest, Int?)])
    func checksComeFirst(request: UserRequest, status: Int?) {
        let outcome = Self.pipeline().decide(request)
        #expect(Self.status(outcome) == status)
        if case .refuse(let refusal) = outcome { #expect(refusal.failureLabel == "malformed_request") }
    }

    @Test func http2ConnectNeedsAProtocol() {
        let plain = Self.h2([HTTPField(":method", "CONNECT"), HTTPField(":authority", "evil:443")])
        #expect(Self.status(Self.pipeline().decide(plain)) == 405)
    }

    // MARK: Local routes

    @Test func theWellKnownDocumentIsServedWithoutCredentials() throws {
        guard case .respond(let response) = Self.pipeline().decide(Self.h1("GET", "/.well-known/porthole?x=1",
                                                                           token: nil)) else {
            Issue.record("not served locally")
            return
        }
        #expect(response.status == 200)
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.contains(#""serviceURL":"https:\/\/p:1""#) && text.contains(#""service":"porthole""#))
        // Other methods and paths are not the controller's: they need credentials like everything else.
        #expect(Self.status(Self.pipeline().decide(Self.h1("POST", "/.well-known/porthole", token: nil))) == 401)
        #expect(Self.status(Self.pipeline().decide(Self.h1("GET", "/.well-known/portholes", token: nil))) == 401)
    }

    // MARK: Authentication, budget, authorization, routing

    @Test func authenticationFailuresKeepTheirLabel() {
        guard case .refuse(let refusal) = Self.pipeline().decide(Self.h1(token: "forged")) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.error.status == 401 && refusal.failureLabel == "token" && refusal.route == nil)
    }

    @Test func aUserOverTheCancellationBudgetGets429WithRetryAfter() {
        let clock = StepClock()
        let budget = CancellationBudget(
            buckets: KeyedTokenBuckets(burst: 2, perSecond: 1, clock: { clock.seconds }),
            metrics: ControllerMetrics(registry: MetricsRegistry()))
        let pipeline = Self.pipeline(budget: budget)
        budget.charge("alice")
        budget.charge("alice")
        guard case .refuse(let refusal) = pipeline.decide(Self.h1()) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.error.status == 429 && refusal.extraHeaders == [HTTPField("retry-after", "1")])
        #expect(refusal.error.isKubernetes && refusal.route == Self.alice)
        clock.seconds += 1
        #expect(Self.status(pipeline.decide(Self.h1())) == nil)
    }

    @Test func aDenialIs403WithTheDecisionsReason() {
        guard case .refuse(let refusal) = Self.pipeline(authorizer: DenyAll()).decide(Self.h1()) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.error.status == 403 && refusal.error.message == "no rule grants alice anything")
    }

    @Test func theAuditHookHearsEveryDecision() {
        let heard = Heard()
        let authorizer = CredentialScopeAuthorizer { request, route, decision in
            heard.append("\(request.requestID) \(route.user) \(decision.isAllowed)")
        }
        _ = Self.pipeline(authorizer: authorizer).decide(Self.h1())
        #expect(heard.lines == ["r1 alice true"])
    }

    @Test func routingRefusalsNameTheAgentAndService() {
        guard case .refuse(let ghost) = Self.pipeline().decide(Self.h1(token: "ghost")),
              case .refuse(let other) = Self.pipeline().decide(Self.h1(token: "other")) else {
            Issue.record("not refused")
            return
        }
        #expect(ghost.error.status == 503 && ghost.error.message == "agent ghost is not connected")
        #expect(other.error.status == 404 && other.error.message == "agent edge has no service x-web/other")
        #expect(!other.error.isKubernetes)
    }

    // MARK: The tunnel header block

    @Test func anHTTP1RequestBecomesATunnelHeaderBlock() throws {
        let request = Self.h1("GET", "/api/v1/pods?watch=1", headers: [
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Accept", "application/json"), ("Cookie", "c"),
            ("X-Forwarded-For", "203.0.113.1"), ("Porthole-User", "mallory"), ("Impersonate_User", "admin"),
        ])
        guard case .forward(let forward) = Self.pipeline().decide(request) else {
            Issue.record("not forwarded")
            return
        }
        #expect(forward.route == Self.alice && forward.session.id == "s1" && !forward.hasBody)
        #expect(forward.fields == [
            HTTPField(":method", "GET"), HTTPField(":scheme", "https"), HTTPField(":authority", "p:1"),
            HTTPField(":path", "/api/v1/pods?watch=1"), HTTPField("accept", "application/json"),
            HTTPField("x-forwarded-for", "192.0.2.1"), HTTPField("x-forwarded-proto", "https"),
            HTTPField("forwarded", "for=192.0.2.1;proto=https"),
            HTTPField("porthole-service", "kubernetes/default"), HTTPField("porthole-request-id", "r1"),
            HTTPField("porthole-user", "alice"),
        ])
    }

    @Test func anExtendedConnectBecomesAnUpgradeWithAFreshWebSocketKey() throws {
        let request = Self.h2([
            HTTPField(":method", "CONNECT"), HTTPField(":protocol", "websocket"), HTTPField(":scheme", "https"),
            HTTPField(":authority", "p:1"), HTTPField(":path", "/api/v1/namespaces/d/pods/x/exec?command=sh"),
            HTTPField("authorization", "Bearer good"), HTTPField("sec-websocket-key", "user-chosen"),
            HTTPField("sec-websocket-protocol", "v5.channel.k8s.io"),
        ], endStream: false)
        #expect(request.upgrade == "websocket" && request.hasBody)
        guard case .forward(let forward) = Self.pipeline().decide(request) else {
            Issue.record("not forwarded")
            return
        }
        let fields = Dictionary(forward.fields.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(fields[":method"] == "GET" && fields["porthole-upgrade"] == "websocket")
        #expect(fields["sec-websocket-protocol"] == "v5.channel.k8s.io")
        let key = try #require(fields["sec-websocket-key"])
        #expect(key != "user-chosen" && key.count == 24)
        #expect(fields["authorization"] == nil && fields["forwarded"] == "for=\"[::1]\";proto=https")
    }
}

/// A clock a test moves by hand.
private final class StepClock: @unchecked Sendable {
    var seconds: Double = 100
}

private final class Heard: @unchecked Sendable {
    var lines: [String] = []
    func append(_ line: String) { self.lines.append(line) }
}
