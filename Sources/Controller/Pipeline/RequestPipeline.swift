import Dispatch
import Foundation
import Tunnel

/// What the pipeline decided for one user request; the transport (HTTP/1.1 or HTTP/2) only carries it out.
enum PipelineOutcome: Sendable {
    /// Refused at some stage: an error in the shape the client understands.
    case refuse(RequestRefusal)
    /// Answered by the controller itself (a route it serves, e.g. `/.well-known/porthole`).
    case respond(LocalResponse)
    /// Carried to an agent's service over a tunnel stream.
    case forward(TunnelForward)
    /// Answered by the controller once the whole request body is read (the debug session API): the transport
    /// collects the body (at most `limit` bytes, else 413) and runs `respond` on a worker thread, where it may
    /// wait (bounded) for the network.
    case collect(BodyRoute)
}

/// A route the controller answers itself from the request body.
struct BodyRoute: Sendable {
    /// The most body bytes accepted; a longer body is refused with 413.
    var limit: Int
    /// Builds the answer from the body; runs on a worker thread and may block for a bounded time.
    var respond: @Sendable ([UInt8]) -> LocalResponse

    /// Where `respond` runs.
    static let workers = DispatchQueue(label: "porthole.pipeline.body-routes", qos: .userInitiated,
                                       attributes: .concurrent)
}

/// A refusal: what the user is told, and how it is logged and counted.
struct RequestRefusal: Sendable {
    var error: ErrorResponse
    /// Extra response headers (`Retry-After`).
    var extraHeaders: [HTTPField] = []
    /// The label of `porthole_auth_failures_total` for refusals before routing; nil once a route was chosen (the
    /// request is then counted in `porthole_requests_total` with its status).
    var failureLabel: String?
    /// Where the request was going, when that was known.
    var route: Route?
    /// The log line's message.
    var logMessage = "request refused"
}

/// A request on its way to an agent: the session chosen, and the tunnel stream's header block.
struct TunnelForward: Sendable {
    var session: any RoutableSession
    var fields: [HTTPField]
    var route: Route
    var hasBody: Bool
    /// The stream's audit (start written; end written when finished), for gateway requests with an audit log.
    var audit: StreamAudit? = nil
    /// Called once the tunnel stream is open with a closure that cuts it (the tunnel stream is cancelled and the
    /// user's stream or connection ends), callable from any thread: a debug session registers its streams so
    /// that expiry or termination cuts every one at once. Returns what the transport calls when the stream ended
    /// by itself, so the registration (and the connection the cut holds) is let go.
    var onOpen: (@Sendable (_ cut: @escaping @Sendable () -> Void) -> @Sendable () -> Void)? = nil
}

/// A tunnel session as routing sees it (`TunnelSession`; fakes in tests).
protocol RoutableSession: AnyObject, Sendable {
    var id: String { get }
    func offers(type: String, name: String) -> Bool
    func openStream(headers: [HTTPField], hasBody: Bool, delegate: TunnelStreamDelegate,
                    delegateQueue: DispatchQueue) -> TunnelStream
}

/// Where the sessions of each agent are found (`AgentRegistry`; fakes in tests).
protocol SessionDirectory: Sendable {
    /// The session of `agent` that should take the next stream, or nil when none is connected.
    func routableSession(of agent: String) -> (any RoutableSession)?
}

/// The one chain every user request passes, whichever protocol brought it:
///
///     checks → local routes → [gateway: authenticate, decide, route] → authenticate → cancellation budget
///            → authorize → route to an agent
///
/// Each stage answers or passes the request on. Sans I/O: it decides, the transport acts.
struct RequestPipeline: Sendable {
    /// Who the request comes from and which service it may use (service token or client certificate).
    let authenticate: @Sendable (_ authorization: String?, _ certificate: Certificate?) -> Result<Route, Refusal>
    let budget: CancellationBudget?
    let authorizer: any RequestAuthorizer
    let sessions: any SessionDirectory
    let localRoutes: LocalRoutes
    /// Requests with a gateway credential (an IdP token, or a trusted gateway's headers); nil without
    /// `--gateway-config`.
    var gateway: GatewayStage? = nil

    /// Decides and calls `completion` on `queue`: inline when no stage can wait, else after the decision ran on a
    /// worker thread. A gateway request may wait for its identity provider's keys (none yet, or a refetch for an
    /// unknown kid) or an external decision endpoint (each bounded), and an event loop serves many connections: it
    /// never waits for the network itself. A gateway request whose issuer's keys are in memory and whose policy asks
    /// no endpoint is decided inline, like a service-token request. Returns whether `completion` already ran.
    @discardableResult
    func decide(_ request: UserRequest, deliverOn queue: DispatchQueue,
                _ completion: @escaping @Sendable (PipelineOutcome) -> Void) -> Bool {
        guard let gateway = self.gateway, RequestChecks.refusal(for: request) == nil,
              self.localRoutes.route(for: request) == nil,
              gateway.authenticator.carriesGatewayCredential(headers: request.headers,
                                                             peerCertificate: request.peerCertificate),
              gateway.mayWait(request)
        else {
            completion(self.decide(request))
            return true
        }
        Self.deciders.async {
            let outcome = self.decide(request)
            queue.async { completion(outcome) }
        }
        return false
    }

    /// Where decisions that may wait run.
    private static let deciders = DispatchQueue(label: "porthole.pipeline.deciders", qos: .userInitiated,
                                                attributes: .concurrent)

    func decide(_ request: UserRequest) -> PipelineOutcome {
        if let refusal = RequestChecks.refusal(for: request) { return .refuse(refusal) }
        if let route = self.localRoutes.route(for: request) {
            return .respond(route.respond(request))
        }
        if let gateway = self.gateway, let outcome = gateway.decide(request, pipeline: self) { return outcome }
        let route: Route
        switch self.authenticate(request.first("authorization"), request.peerCertificate) {
        case .failure(let refusal):
            return .refuse(RequestRefusal(
                error: ErrorResponse(status: refusal.status, message: refusal.reason,
                                     serviceType: refusal.serviceType, requestID: request.requestID),
                failureLabel: refusal.label))
        case .success(let found):
            route = found
        }
        if let wait = self.budget?.refusal(for: route.user) {
            return .refuse(self.refusal(429, "too many cancelled requests from \(route.user); retry in \(wait) s",
                                        request, route, extra: [HTTPField("retry-after", "\(wait)")]))
        }
        let decision = self.authorizer.decide(request, route: route)
        guard decision.isAllowed else {
            return .refuse(self.refusal(403, decision.reason, request, route))
        }
        guard let session = self.sessions.routableSession(of: route.agent) else {
            return .refuse(self.refusal(503, "agent \(route.agent) is not connected", request, route))
        }
        guard session.offers(type: route.serviceType, name: route.serviceName) else {
            return .refuse(self.refusal(404, "agent \(route.agent) has no service \(route.serviceKey)", request, route))
        }
        return .forward(TunnelForward(session: session, fields: TunnelRequestHead.fields(for: request, route: route),
                                      route: route, hasBody: request.hasBody))
    }

    private func refusal(_ status: Int, _ message: String, _ request: UserRequest, _ route: Route,
                         extra: [HTTPField] = []) -> RequestRefusal {
        RequestRefusal(error: ErrorResponse(status: status, message: message, serviceType: route.serviceType,
                                            requestID: request.requestID),
                       extraHeaders: extra, route: route)
    }
}

/// The first stage: requests no route may take, refused before anyone is asked who sent them.
enum RequestChecks {
    static func refusal(for request: UserRequest) -> RequestRefusal? {
        func refuse(_ status: Int, _ message: String, log: String = "request refused") -> RequestRefusal {
            RequestRefusal(error: ErrorResponse(status: status, message: message, serviceType: nil,
                                                requestID: request.requestID),
                           failureLabel: "malformed_request", logMessage: log)
        }
        if request.method == "CONNECT", request.transport == .http1 || request.upgrade == nil {
            return refuse(405, "CONNECT is not supported: Porthole is not a forward proxy", log: "CONNECT refused")
        }
        if request.transport == .http1 {
            // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
            let hosts = request.count(of: "host")
            guard hosts == 1 || (hosts == 0 && request.version == "HTTP/1.0") else {
                return refuse(400, "a request needs exactly one Host header")
            }
        }
        // An extended CONNECT's `:path` becomes an HTTP/1.1 GET's target at the agent.
        if let refusal = RequestTarget.check(request.target, method: request.upgrade == nil ? request.method : "GET") {
            return refuse(400, refusal.description)
        }
        if request.count(of: "authorization") > 1 {
            return refuse(400, "more than one Authorization header")
        }
        return nil
    }
}

/// The header block of a tunnel stream for a user request: the request's end-to-end headers (`HeaderRules`),
/// the forwarding headers the controller vouches for, and Porthole's own.
enum TunnelRequestHead {
    static func fields(for request: UserRequest, route: Route) -> [HTTPField] {
        var fields = [
            HTTPField(":method", request.upgrade != nil && request.transport == .http2 ? "GET" : request.method),
            HTTPField(":scheme", "https"), HTTPField(":authority", request.authority ?? "porthole"),
            HTTPField(":path", request.target),
        ]
        fields.reserveCapacity(request.headers.count + 10)
        let connectionTokens = request.transport == .http1 ? Self.connectionTokens(request) : []
        // RFC 8441: over HTTP/2 there is no WebSocket key; the agent's HTTP/1.1 upgrade needs a fresh one.
        let replacesWebSocketKey = request.transport == .http2 && request.upgrade?.lowercased() == "websocket"
        for field in request.headers where HeaderRules.controllerForwards(field.name) {
            if !connectionTokens.isEmpty, connectionTokens.contains(field.name) { continue }
            if replacesWebSocketKey, field.name == "sec-websocket-key" { continue }
            fields.append(field)
        }
        if replacesWebSocketKey { fields.append(HTTPField("sec-websocket-key", Self.webSocketKey())) }
        fields += TunnelProtocol.forwardingHeaders(peerHost: request.peerHost ?? "unknown")
        if let upgrade = request.upgrade { fields.append(HTTPField(TunnelProtocol.upgradeHeader, upgrade)) }
        fields.append(HTTPField(TunnelProtocol.serviceHeader, route.serviceKey))
        fields.append(HTTPField(TunnelProtocol.requestIDHeader, request.requestID))
        fields.append(HTTPField(TunnelProtocol.userHeader, route.user))
        return fields
    }

    /// Header names listed in HTTP/1.1 `Connection`, lowercased: hop-by-hop for this message.
    private static func connectionTokens(_ request: UserRequest) -> [String] {
        var tokens: [String] = []
        for field in request.headers where field.name == "connection" {
            for piece in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                let token = String(decoding: piece.trimmingOptionalWhitespace(), as: UTF8.self).asciiLowercased()
                if !token.isEmpty { tokens.append(token) }
            }
        }
        return tokens
    }

    static func webSocketKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }
}
