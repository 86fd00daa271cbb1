import Dispatch
import Foundation
import Synchronization
import Tunnel

/// Where a gateway identity's request goes: `/clusters/AGENT/SERVICE/REST…` is the agent's `kubernetes/SERVICE`
/// with the path `/REST…` (query kept), so `https://HOST:PORT/clusters/AGENT/SERVICE` is a kubeconfig `server:`.
struct GatewayPath: Sendable, Equatable {
    static let prefix = "/clusters/"

    var agent: String
    var service: String
    /// The path at the service, from `/`.
    var path: String
    /// The query, without `?`.
    var query: String?

    /// The target sent to the service.
    var target: String { self.query.map { "\(self.path)?\($0)" } ?? self.path }

    /// Parses a request target; nil when it is not `/clusters/AGENT/SERVICE[/…]` with valid names.
    init?(target: String) {
        let (path, query): (Substring, String?) = {
            guard let mark = target.firstIndex(of: "?") else { return (target[...], nil) }
            return (target[..<mark], String(target[target.index(after: mark)...]))
        }()
        guard path.hasPrefix(Self.prefix) else { return nil }
        let parts = path.dropFirst(Self.prefix.count).split(separator: "/", maxSplits: 2,
                                                             omittingEmptySubsequences: false)
        guard parts.count >= 2, EndpointIdentity.isValidComponent(String(parts[0])),
              EndpointIdentity.isValidComponent(String(parts[1])) else { return nil }
        self.agent = String(parts[0])
        self.service = String(parts[1])
        self.path = parts.count == 3 ? "/" + parts[2] : "/"
        self.query = query
    }
}

/// What `GET /api/gateway/v1/me` answers.
struct GatewayMe: Sendable, Equatable, Encodable {
    var username: String
    var email: String?
    var groups: [String]
    var issuer: String
    var gateway: String?
    var grants: [Policy.Grant]
}

/// Asks an external decision endpoint synchronously (the pipeline decides synchronously): the request's connection
/// waits at most the endpoint's `timeoutSeconds`.
protocol SynchronousExternalDecision: Sendable {
    func post(url: String, body: Data, timeoutSeconds: Double) -> ExternalDecision.Outcome
}

/// The gateway stage of the pipeline, between the local routes and Porthole's own authentication: a request with a
/// gateway credential is authenticated, decided by the policy and routed here; anything else passes on.
struct GatewayStage: Sendable {
    static let mePath = "/api/gateway/v1/me"

    let authenticator: GatewayAuthenticator
    /// The policy in force; nil denies every Kubernetes request.
    let policy: Policy?
    let audit: AuditLog?
    let external: (any SynchronousExternalDecision)?
    /// Namespace labels for bindings with a `namespaceSelector`; nil reads none (such bindings never match).
    var namespaceLabels: NamespaceLabels? = nil
    /// The debug sessions (`--sessions-journal`); nil answers the session API with 503 and refuses every stream
    /// to a `porthole-*` container.
    var sessions: SessionService? = nil

    /// Whether deciding `request` may wait on the network: for an issuer's keys (none yet, or a refetch for an
    /// unknown kid), for namespace labels read through a tunnel (a policy with a `namespaceSelector` binding), or for
    /// the policy's external decision endpoint. Everything else is decided from memory.
    func mayWait(_ request: UserRequest) -> Bool {
        if self.policy?.externalDecision != nil { return true }
        if self.namespaceLabels != nil, self.policy?.bindings.contains(where: { $0.namespaceSelector != nil }) == true {
            return true
        }
        return self.authenticator.mayWaitForKeys(headers: request.headers, peerCertificate: request.peerCertificate)
    }

    /// The outcome for a gateway request; nil when the request carries no gateway credential.
    func decide(_ request: UserRequest, pipeline: RequestPipeline) -> PipelineOutcome? {
        let gatewayPath = GatewayPath(target: request.target)
        var record = AuditRecord(requestID: request.requestID, source: request.peerHost ?? "")
        if let gatewayPath {
            record.cluster = gatewayPath.agent
            record.service = "kubernetes/\(gatewayPath.service)"
        }
        let serviceType = gatewayPath == nil ? nil : "kubernetes"
        let identity: GatewayIdentity
        switch self.authenticator.authenticate(headers: request.headers, peerCertificate: request.peerCertificate) {
        case .notGateway:
            return nil
        case .refused(let status, let reason, let label):
            record.gateway = self.authenticator.trustedGateway(request.peerCertificate) ?? ""
            record.decision = "deny"
            record.reason = reason
            self.audit?.write(record)
            return .refuse(RequestRefusal(
                error: ErrorResponse(status: status, message: reason, serviceType: serviceType,
                                     requestID: request.requestID),
                failureLabel: "gateway_\(label)", logMessage: "gateway request refused"))
        case .identity(let found):
            identity = found
        }
        record.set(identity: identity)
        if request.path == Self.mePath, request.method == "GET" || request.method == "HEAD" {
            return .respond(.json(GatewayMe(
                username: identity.username, email: identity.email, groups: identity.groups,
                issuer: identity.issuer, gateway: identity.gateway,
                grants: self.policy?.grants(for: identity.subject) ?? [])))
        }
        if request.path == SessionService.basePath || request.path.hasPrefix(SessionService.basePath + "/") {
            return self.sessionCall(request, identity: identity)
        }
        guard let gatewayPath else {
            return .refuse(self.refusal(404, "no such gateway path: use /clusters/AGENT/SERVICE/… or \(Self.mePath)",
                                        request, serviceType: nil, record: nil))
        }
        let route = Route(agent: gatewayPath.agent, serviceType: "kubernetes", serviceName: gatewayPath.service,
                          user: identity.username)
        if let wait = pipeline.budget?.refusal(for: identity.username) {
            return .refuse(self.refusal(429, "too many cancelled requests from \(identity.username); retry in \(wait) s",
                                        request, route: route, extra: [HTTPField("retry-after", "\(wait)")]))
        }
        // An HTTP/2 extended CONNECT reaches the service as an HTTP/1.1 GET upgrade.
        let method = request.upgrade != nil && request.transport == .http2 ? "GET" : request.method
        let attributes: KubernetesRequestAttributes
        do {
            attributes = try KubernetesRequestAttributes(method: method, path: gatewayPath.path,
                                                         query: gatewayPath.query)
        } catch {
            record.decision = "deny"
            record.reason = error.reason
            self.audit?.write(record)
            return .refuse(self.refusal(400, error.reason, request, route: route))
        }
        record.set(attributes: attributes)
        // Labels are read only when some binding selects namespaces by label (and cached): the cluster's own
        // namespace object, through the tunnel, on this worker thread.
        var labels: [String: String]?
        let namespace = attributes.namespace
        if !namespace.isEmpty, let lookup = self.namespaceLabels,
           self.policy?.bindings.contains(where: { $0.namespaceSelector != nil }) == true {
            labels = lookup.labels(cluster: gatewayPath.agent, service: gatewayPath.service, namespace: namespace,
                                   sessions: pipeline.sessions)
        }
        var sessionStream: String?
        let decision: PolicyDecision
        switch self.debugContainerAccess(attributes, query: gatewayPath.query, cluster: gatewayPath.agent,
                                         subject: identity.subject) {
        case .notDebugContainer:
            decision = self.decide(attributes.policyRequest(subject: identity.subject, cluster: gatewayPath.agent,
                                                            namespaceLabels: labels), attributes: attributes)
        case .allowed(let sessionID):
            sessionStream = sessionID
            decision = PolicyDecision(isAllowed: true, reason: "debug session \(sessionID) of \(identity.username) is active",
                                      rule: nil)
        case .denied(let reason):
            decision = .deny(reason)
        }
        record.decision = decision.isAllowed ? "allow" : "deny"
        record.reason = decision.reason
        self.audit?.write(record)
        guard decision.isAllowed else {
            return .refuse(self.refusal(403, decision.reason, request, route: route))
        }
        guard let session = pipeline.sessions.routableSession(of: route.agent) else {
            return .refuse(self.refusal(503, "agent \(route.agent) is not connected", request, route: route))
        }
        guard session.offers(type: route.serviceType, name: route.serviceName) else {
            return .refuse(self.refusal(404, "agent \(route.agent) has no service \(route.serviceKey)", request,
                                        route: route))
        }
        var forwarded = request
        forwarded.target = gatewayPath.target
        var fields = TunnelRequestHead.fields(for: forwarded, route: route)
        fields.append(HTTPField(TunnelProtocol.identityUserHeader, identity.username))
        for group in identity.groups { fields.append(HTTPField(TunnelProtocol.identityGroupHeader, group)) }
        var forward = TunnelForward(session: session, fields: fields, route: route, hasBody: request.hasBody,
                                    audit: self.audit.map { StreamAudit(log: $0, record: record) })
        if let sessionStream, let registry = self.sessions?.registry {
            forward.onOpen = { cut in
                do {
                    let token = try registry.registerStream(sessionID: sessionStream, cancel: cut)
                    return { registry.unregisterStream(token) }
                } catch {
                    cut()  // the session ended between the decision and the stream's start
                    return {}
                }
            }
        }
        return .forward(forward)
    }

    /// Whether an attach or exec names a Porthole debug container (`porthole-*`), and if so whether the caller owns
    /// its session and it is active; only then may a stream reach it, whatever the policy grants.
    func debugContainerAccess(_ attributes: KubernetesRequestAttributes, query: String?, cluster: String,
                              subject: PolicySubject) -> SessionRegistry.AccessVerdict {
        guard attributes.resource == "pods", ["attach", "exec"].contains(attributes.subresource) else {
            return .notDebugContainer
        }
        let containers = KubernetesRequestAttributes.queryValues(query ?? "")["container"] ?? []
        guard containers.contains(where: { $0.hasPrefix(DebugSession.containerPrefix) }) else { return .notDebugContainer }
        guard Set(containers).count == 1 else { return .denied(reason: "more than one container named") }
        guard let sessions = self.sessions else {
            return .denied(reason: "debug sessions are off on this controller; no one reaches \(containers[0])")
        }
        return sessions.registry.access(cluster: cluster, namespace: attributes.namespace, pod: attributes.name,
                                        container: containers[0], subject: subject)
    }

    /// `…/api/gateway/v1/sessions…`: GET answers now (on the decision's worker thread), POST once its body is read.
    private func sessionCall(_ request: UserRequest, identity: GatewayIdentity) -> PipelineOutcome {
        guard let sessions = self.sessions else {
            return .respond(.sessionJSON(["error": "debug sessions are off: start the controller with "
                                            + "--sessions-journal FILE", "code": "unavailable"], status: 503))
        }
        let caller = SessionService.Caller(identity: identity, policy: self.policy, requestID: request.requestID,
                                           source: request.peerHost ?? "")
        let path = request.path
        let query = request.target.firstIndex(of: "?").map { String(request.target[request.target.index(after: $0)...]) }
        let method = request.method
        let headers = request.headers
        if method == "POST" {
            return .collect(BodyRoute(limit: SessionService.maximumBodyBytes) { body in
                sessions.handle(method: method, path: path, query: query, headers: headers, body: body, caller: caller)
            })
        }
        return .respond(sessions.handle(method: method, path: path, query: query, headers: headers, body: [],
                                        caller: caller))
    }

    /// The policy's decision, and the external decision's when the policy allows and names one.
    func decide(_ request: PolicyRequest, attributes: KubernetesRequestAttributes) -> PolicyDecision {
        guard let policy = self.policy else {
            return .deny("no policy is configured (gateway configuration policyFile)")
        }
        let decision = policy.decide(request)
        guard decision.isAllowed, let endpoint = policy.externalDecision else { return decision }
        var bindingLabel: String?
        if case .binding(let index, _)? = decision.rule { bindingLabel = policy.label(ofBinding: index) }
        let input = ExternalDecision.Input(request: request, attributes: attributes, decision: decision,
                                          bindingLabel: bindingLabel)
        let outcome = self.external?.post(url: endpoint.url, body: ExternalDecision.requestBody(input),
                                          timeoutSeconds: endpoint.timeoutSeconds)
            ?? .failed(reason: "no HTTP client for the external decision")
        let verdict = ExternalDecision.interpret(outcome, timeoutSeconds: endpoint.timeoutSeconds)
        guard verdict.isAllowed else {
            return .deny("\(decision.reason), but the external decision denies: \(verdict.reason)")
        }
        var allowed = decision
        allowed.reason += "; the external decision allows: \(verdict.reason)"
        return allowed
    }

    private func refusal(_ status: Int, _ message: String, _ request: UserRequest, serviceType: String? = "kubernetes",
                         route: Route? = nil, record: AuditRecord? = nil,
                         extra: [HTTPField] = []) -> RequestRefusal {
        RequestRefusal(error: ErrorResponse(status: status, message: message, serviceType: serviceType,
                                            requestID: request.requestID),
                       extraHeaders: extra, route: route, logMessage: "gateway request refused")
    }

    private func refusal(_ status: Int, _ message: String, _ request: UserRequest, route: Route,
                         extra: [HTTPField] = []) -> RequestRefusal {
        self.refusal(status, message, request, serviceType: "kubernetes", route: route, record: nil, extra: extra)
    }
}

/// The external decision over the controller's HTTP client, waited for on the caller's thread.
struct HTTPExternalDecision: SynchronousExternalDecision {
    let client: HTTPClient

    func post(url: String, body: Data, timeoutSeconds: Double) -> ExternalDecision.Outcome {
        guard let parsed = HTTPClientURL(url) else { return .failed(reason: "\(url) is not an http(s) URL") }
        let result = Mutex<ExternalDecision.Outcome?>(nil)
        let done = DispatchSemaphore(value: 0)
        let limits = HTTPClient.Limits(connectTimeout: timeoutSeconds, totalTimeout: timeoutSeconds,
                                       maximumResponseBytes: ExternalDecision.maximumResponseBytes + 1)
        self.client.send(HTTPClientRequest(method: "POST", url: parsed,
                                           headers: [HTTPField("content-type", "application/json")],
                                           body: Array(body)), limits: limits) { response in
            let outcome: ExternalDecision.Outcome
            switch response {
            case .success(let answer): outcome = .response(status: answer.status, body: Data(answer.body))
            case .failure(.timedOut): outcome = .timedOut
            case .failure(.tooLarge): outcome = .response(status: 200, body: Data(count: ExternalDecision.maximumResponseBytes + 1))
            case .failure(let error): outcome = .failed(reason: "\(error)")
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeoutSeconds + 1) == .success else { return .timedOut }
        return result.withLock { $0 } ?? .timedOut
    }
}
