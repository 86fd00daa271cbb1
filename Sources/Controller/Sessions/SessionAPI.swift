import Foundation
import Tunnel

/// The REST API of debug sessions on the gateway routes (docs/gateway.md, "Debug sessions"):
///
///     POST /api/gateway/v1/sessions                  create
///     GET  /api/gateway/v1/sessions[?scope=&state=]  list
///     GET  /api/gateway/v1/sessions/ID               one
///     POST /api/gateway/v1/sessions/ID/{approve,reject,extend,terminate}
///
/// Every call is audited (a `decision` line with operation `debug`, and the session's own lines for each change).
/// State-changing calls need `Content-Type: application/json` and `X-Porthole-Request: 1`, which a browser
/// cannot send cross-site without a CORS preflight that the controller never grants.
extension SessionService {
    /// Who calls, as the gateway verified them.
    struct Caller: Sendable {
        var identity: GatewayIdentity
        var policy: Policy?
        var requestID: String
        var source: String

        var actor: DebugSessionActor {
            DebugSessionActor(subject: self.identity.subject, isAdmin: self.policy?.isAdmin(self.identity.subject) ?? false)
        }
    }

    /// An API error: `{"error": "…", "code": "…"}`.
    struct APIError: Error {
        var status: Int
        var code: String
        var reason: String

        init(_ status: Int, _ code: String, _ reason: String) {
            self.status = status
            self.code = code
            self.reason = reason
        }

        init(_ error: DebugSessionError) {
            self.init(error.status, error.kind.rawValue, error.reason)
        }

        static func unavailable(_ error: SessionStoreError) -> APIError {
            APIError(503, "unavailable", error.reason)
        }
    }

    /// Whether a request may change state: a JSON body and the custom header.
    static func csrfProblem(_ headers: [HTTPField]) -> String? {
        let type = headers.first { $0.name == "content-type" }?.value.lowercased() ?? ""
        let custom = headers.first { $0.name == "x-porthole-request" }?.value
        guard type.hasPrefix("application/json"), custom == "1" else {
            return "state-changing calls need Content-Type: application/json and X-Porthole-Request: 1"
        }
        return nil
    }

    /// Answers one call. Runs on a worker thread: a create waits for the cluster (bounded).
    func handle(method: String, path: Substring, query: String?, headers: [HTTPField], body: [UInt8],
                caller: Caller) -> LocalResponse {
        var audit = AuditRecord(requestID: caller.requestID, source: caller.source)
        audit.set(identity: caller.identity)
        audit.operation = PolicyOperation.debug.rawValue
        audit.resource = "debugsessions"
        let rest = path.dropFirst(Self.basePath.count).split(separator: "/", omittingEmptySubsequences: false)
            .dropFirst().map(String.init)
        let result: Result<(Int, LocalResponse), APIError>
        do {
            switch (method, rest.count) {
            case ("GET", 0), ("HEAD", 0):
                audit.verb = "list"
                result = .success((200, try self.list(query: query, caller: caller)))
            case ("POST", 0):
                audit.verb = "create"
                if let problem = Self.csrfProblem(headers) { throw APIError(403, "forbidden", problem) }
                let (status, session) = try self.create(body: body, caller: caller, audit: &audit)
                result = .success((status, .sessionJSON(SessionView(session), status: status)))
            case ("GET", 1), ("HEAD", 1):
                audit.verb = "get"
                audit.name = rest[0]
                let session = try self.visibleSession(rest[0], caller: caller)
                audit.cluster = session.cluster
                audit.namespace = session.namespace
                result = .success((200, .sessionJSON(SessionView(session))))
            case ("POST", 2):
                audit.verb = rest[1]
                audit.name = rest[0]
                if let problem = Self.csrfProblem(headers) { throw APIError(403, "forbidden", problem) }
                let session = try self.change(id: rest[0], verb: rest[1], body: body, caller: caller, audit: &audit)
                result = .success((200, .sessionJSON(SessionView(session))))
            default:
                throw APIError(404, "notFound", "no such session call: \(method) \(path)")
            }
        } catch let error as APIError {
            result = .failure(error)
        } catch let error as DebugSessionError {
            result = .failure(APIError(error))
        } catch {
            result = .failure(APIError(500, "internal", "\(error)"))
        }
        switch result {
        case .success(let (_, response)):
            audit.decision = "allow"
            if audit.reason.isEmpty { audit.reason = "debug session \(audit.verb)" }
            self.writeAudit(audit)
            return response
        case .failure(let error):
            audit.decision = "deny"
            audit.reason = error.reason
            self.writeAudit(audit)
            return .sessionJSON(ErrorBody(error: error.reason, code: error.code), status: error.status)
        }
    }

    private struct ErrorBody: Encodable {
        var error: String
        var code: String
    }

    private func writeAudit(_ record: AuditRecord) {
        self.auditLog()?.write(record)
    }

    // MARK: - Calls

    private func list(query: String?, caller: Caller) throws -> LocalResponse {
        let values = KubernetesRequestAttributes.queryValues(query ?? "")
        let scope = values["scope"]?.first ?? "mine"
        guard ["mine", "approvals", "all"].contains(scope) else {
            throw APIError(400, "invalid", "scope must be mine, approvals or all, got \(scope)")
        }
        let state = try values["state"]?.first.map { text in
            guard let state = DebugSessionState(rawValue: text) else {
                throw APIError(400, "invalid", "state \(text) is not one of "
                    + DebugSessionState.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return state
        }
        let actor = caller.actor
        let items = self.registry.allSessions().filter { session in
            if let state, session.state != state { return false }
            let owns = session.isOwned(by: actor.subject)
            switch scope {
            case "mine": return owns
            case "approvals":
                return !owns && (actor.isAdmin || session.isApprover(actor.subject))
                    && (session.state == .pendingApproval || session.pendingRenewal != nil)
            default: return owns || actor.isAdmin || session.isApprover(actor.subject)
            }
        }
        return .sessionJSON(SessionList(items: items.map { SessionView($0) }))
    }

    private struct SessionList: Encodable {
        var items: [SessionView]
    }

    /// The session when the caller may see it (its owner, an approver of its binding, an admin); else 404.
    private func visibleSession(_ id: String, caller: Caller) throws -> DebugSession {
        let actor = caller.actor
        guard let session = self.registry.session(id: id),
              session.isOwned(by: actor.subject) || actor.isAdmin || session.isApprover(actor.subject)
        else { throw APIError(404, "notFound", "no debug session \(id)") }
        return session
    }

    private func create(body: [UInt8], caller: Caller, audit: inout AuditRecord) throws -> (Int, DebugSession) {
        let request = try DebugSessionRequest.decode(body)
        audit.cluster = request.cluster
        audit.service = "kubernetes/\(self.kubernetesService)"
        audit.namespace = request.namespace
        audit.name = request.pod
        if let problem = KubernetesName.problem(cluster: request.cluster) {
            throw APIError(400, "invalid", "cluster \(problem)")
        }
        if let problem = KubernetesName.labelProblem(request.namespace) {
            throw APIError(400, "invalid", "namespace \(problem)")
        }
        if let problem = KubernetesName.subdomainProblem(request.pod) {
            throw APIError(400, "invalid", "pod \(problem)")
        }
        guard let policy = caller.policy else {
            throw APIError(403, "forbidden", "no policy is configured (gateway configuration policyFile)")
        }
        // The namespace's labels: the policy's selectors and the PodSecurity level.
        let namespace: [String: JSONValue]?
        switch self.kubernetes(request.cluster, "GET", "/api/v1/namespaces/\(request.namespace)") {
        case .failure(let error): throw APIError.unavailable(error)
        case .success(let response) where response.status == 200:
            namespace = JSONValue.parse(response.body)?.object
        case .success(let response) where response.status == 404:
            namespace = nil
        case .success(let response):
            throw APIError(503, "unavailable", "reading namespace \(request.namespace) in cluster \(request.cluster) "
                + "answered HTTP \(response.status)")
        }
        let labels = namespace?["metadata"]?.object?["labels"]?.object?.compactMapValues(\.string)
        let decision = policy.decide(PolicyRequest(
            subject: caller.identity.subject, cluster: request.cluster,
            scope: .namespace(request.namespace, labels: labels ?? [:]), operation: .debug))
        guard decision.isAllowed else { throw APIError(403, "forbidden", decision.reason) }
        guard namespace != nil else {
            throw APIError(404, "notFound", "namespace \(request.namespace) not found in cluster \(request.cluster)")
        }
        let validated = try request.validate(decision: decision,
                                             namespaceEnforceLevel: labels?[ProfileChoice.enforceLabel])
        let pod: PodSnapshot
        switch self.kubernetes(request.cluster, "GET", "/api/v1/namespaces/\(request.namespace)/pods/\(request.pod)") {
        case .failure(let error): throw APIError.unavailable(error)
        case .success(let response) where response.status == 404:
            throw APIError(404, "notFound", "pod \(request.namespace)/\(request.pod) not found in cluster \(request.cluster)")
        case .success(let response):
            guard response.status == 200, let parsed = PodSnapshot.parse(response.body) else {
                throw APIError(503, "unavailable", "reading pod \(request.pod) answered HTTP \(response.status)")
            }
            pod = parsed
        }
        if let target = validated.targetContainer, !pod.containers.contains(target) {
            throw APIError(400, "invalid", "pod \(request.pod) has no container \(target)")
        }
        let (machine, actions) = DebugSessionStateMachine.create(
            validated, owner: caller.identity.subject, podUID: pod.uid, now: Date())
        audit.reason = decision.reason + "; session \(machine.session.id) created"
        self.perform(self.registry.add(machine.session, actions: actions))
        let session = self.waitWhileStarting(machine.session.id) ?? machine.session
        return (201, session)
    }

    private struct ReasonBody: Decodable {
        var reason: String?
        var duration: DebugDuration?
    }

    private func change(id: String, verb: String, body: [UInt8], caller: Caller,
                        audit: inout AuditRecord) throws -> DebugSession {
        let session = try self.visibleSession(id, caller: caller)
        audit.cluster = session.cluster
        audit.namespace = session.namespace
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parsed: ReasonBody
        do {
            parsed = text.isEmpty ? ReasonBody() : try JSONDecoder().decode(ReasonBody.self, from: Data(body))
        } catch {
            throw APIError(400, "invalid", "the body must be a JSON object like {\"reason\": \"…\"}")
        }
        let actor = caller.actor
        let now = Date()
        let actions: [DebugSessionAction]
        switch verb {
        case "approve":
            actions = try self.registry.transition(id: id) { (m: inout DebugSessionStateMachine) throws(DebugSessionError) in try m.approve(by: actor, reason: parsed.reason ?? "", now: now) }
        case "reject":
            actions = try self.registry.transition(id: id) { (m: inout DebugSessionStateMachine) throws(DebugSessionError) in try m.reject(by: actor, reason: parsed.reason ?? "", now: now) }
        case "extend":
            actions = try self.registry.transition(id: id) { (m: inout DebugSessionStateMachine) throws(DebugSessionError) in
                try m.extend(by: parsed.duration?.seconds, actor: actor, reason: parsed.reason, now: now)
            }
        case "terminate":
            actions = try self.registry.transition(id: id) { (m: inout DebugSessionStateMachine) throws(DebugSessionError) in try m.terminate(by: actor, reason: parsed.reason, now: now) }
        default:
            throw APIError(404, "notFound", "no such session call: \(verb)")
        }
        self.perform(actions)
        audit.reason = "debug session \(id): \(verb)"
        return self.waitWhileStarting(id) ?? session
    }
}

/// A session as the API shows it.
struct SessionView: Encodable {
    var id: String
    var cluster: String
    var namespace: String
    var pod: String
    var podUID: String
    var container: String
    var image: String
    var targetContainer: String?
    var command: [String]?
    var profile: SecurityProfile
    var owner: String
    var ownerEmail: String?
    var reason: String
    var binding: String
    var state: DebugSessionState
    var durationSeconds: Int
    var createdAt: Date
    var pendingUntil: Date?
    var startingUntil: Date?
    var startedAt: Date?
    var deadline: Date?
    var remainingSeconds: Int
    var renewals: Int
    var maxRenewals: Int
    var maxDurationSeconds: Int
    var pendingRenewal: DebugSessionRenewal?
    var history: [DebugSessionStateChange]

    init(_ session: DebugSession, now: Date = Date()) {
        self.id = session.id
        self.cluster = session.cluster
        self.namespace = session.namespace
        self.pod = session.pod
        self.podUID = session.podUID
        self.container = session.containerName
        self.image = session.image
        self.targetContainer = session.targetContainer
        self.command = session.command
        self.profile = session.profile
        self.owner = session.owner.username
        self.ownerEmail = session.owner.email
        self.reason = session.reason
        self.binding = session.binding
        self.state = session.state == .active && !session.isActive(at: now) ? .expired : session.state
        self.durationSeconds = session.durationSeconds
        self.createdAt = session.createdAt
        self.pendingUntil = session.pendingUntil
        self.startingUntil = session.startingUntil
        self.startedAt = session.startedAt
        self.deadline = session.deadline
        self.remainingSeconds = session.remainingSeconds(at: now)
        self.renewals = session.renewals
        self.maxRenewals = session.limits.maxRenewals
        self.maxDurationSeconds = session.limits.maxDurationSeconds
        self.pendingRenewal = session.pendingRenewal
        self.history = session.history
    }
}

extension LocalResponse {
    /// A JSON body in the sessions' spelling (sorted keys, RFC 3339 times with milliseconds).
    static func sessionJSON(_ value: some Encodable, status: Int = 200) -> LocalResponse {
        LocalResponse(status: status, headers: [HTTPField("content-type", "application/json")],
                      body: DebugSessionCoding.encode(value) + [UInt8(ascii: "\n")])
    }
}
