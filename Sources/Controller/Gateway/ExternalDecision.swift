import Foundation
import Tunnel

/// The exchange with an external decision endpoint in OPA's data-API shape, without the I/O: the request body
/// `{"input": {…}}` and the reading of `{"result": {"allow": bool, "reason": "…"}}`. Anything but a clear allow is
/// a deny with a reason: an HTTP error, a timeout, no `result`, an `allow` that is not a boolean. The answer is read
/// with `Tunnel`'s `JSONValue`, which keeps booleans apart from numbers.
enum ExternalDecision {
    /// What the endpoint is told, as `input`.
    struct Input: Sendable, Equatable, Encodable {
        /// The person.
        struct User: Sendable, Equatable, Encodable {
            var username: String
            var email: String?
            var groups: [String]
        }

        /// The Kubernetes request attributes, for gateway requests to a Kubernetes service.
        struct Kubernetes: Sendable, Equatable, Encodable {
            var isResourceRequest: Bool
            var path: String
            var verb: String
            var apiGroup: String
            var apiVersion: String
            var namespace: String
            var resource: String
            var subresource: String
            var name: String
        }

        /// What Porthole's own policy decided (always an allow: a deny is final without asking).
        struct LocalDecision: Sendable, Equatable, Encodable {
            var allow: Bool
            var reason: String
            var binding: String?
        }

        var user: User
        var cluster: String
        /// `namespace`, `allNamespaces` or `cluster`.
        var scope: String
        var namespace: String?
        var namespaceLabels: [String: String]?
        var operation: PolicyOperation
        var kubernetes: Kubernetes?
        var policy: LocalDecision

        /// The input for `request`, with `attributes` when it is a Kubernetes request, and the local `decision`.
        init(
            request: PolicyRequest, attributes: KubernetesRequestAttributes?, decision: PolicyDecision,
            bindingLabel: String?
        ) {
            self.user = User(
                username: request.subject.username, email: request.subject.email, groups: request.subject.groups)
            self.cluster = request.cluster
            switch request.scope {
            case .namespace(let name, let labels):
                self.scope = "namespace"
                self.namespace = name
                self.namespaceLabels = labels
            case .allNamespaces:
                self.scope = "allNamespaces"
            case .cluster:
                self.scope = "cluster"
            }
            self.operation = request.operation
            self.kubernetes = attributes.map {
                Kubernetes(
                    isResourceRequest: $0.isResourceRequest, path: $0.path, verb: $0.verb, apiGroup: $0.apiGroup,
                    apiVersion: $0.apiVersion, namespace: $0.namespace, resource: $0.resource,
                    subresource: $0.subresource, name: $0.name)
            }
            self.policy = LocalDecision(allow: decision.isAllowed, reason: decision.reason, binding: bindingLabel)
        }
    }

    /// What came back from the POST, as the HTTP client saw it.
    enum Outcome: Sendable, Equatable {
        /// An HTTP response with its status and body.
        case response(status: Int, body: Data)
        /// No response: connection refused, TLS failure, …
        case failed(reason: String)
        /// No response within the configured timeout.
        case timedOut
    }

    /// The endpoint's answer, read.
    struct Verdict: Sendable, Equatable {
        /// Whether the endpoint allowed the request.
        var isAllowed: Bool
        /// The endpoint's reason, or why its answer counts as a deny.
        var reason: String
    }

    /// Larger answers are not decisions.
    static let maximumResponseBytes = 64 * 1024

    /// `{"input": …}` as JSON with sorted keys.
    static func requestBody(_ input: Input) -> Data {
        struct Envelope: Encodable { var input: Input }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, booleans and dictionaries of strings cannot fail.
        return try! encoder.encode(Envelope(input: input))
    }

    /// Reads `outcome`: only HTTP 200 with `{"result": {"allow": true}}` (or `{"result": true}`) allows.
    static func interpret(_ outcome: Outcome, timeoutSeconds: Double) -> Verdict {
        func deny(_ reason: String) -> Verdict { Verdict(isAllowed: false, reason: reason) }
        let body: Data
        switch outcome {
        case .timedOut:
            return deny("the external decision did not answer within \(Self.format(timeoutSeconds))s")
        case .failed(let reason):
            return deny("the external decision failed: \(reason)")
        case .response(let status, let data):
            guard status == 200 else { return deny("the external decision answered HTTP \(status)") }
            body = data
        }
        guard body.count <= Self.maximumResponseBytes else {
            return deny("the external decision's answer is larger than \(Self.maximumResponseBytes) bytes")
        }
        guard case .object(let document)? = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return deny("the external decision's answer is not a JSON object")
        }
        switch document["result"] {
        case nil, .null?:
            return deny("the external decision answered without a result (is the rule defined?)")
        case .bool(let allow)?:
            return allow ? Verdict(isAllowed: true, reason: "allowed") : deny("denied")
        case .object(let result)?:
            let reason: String? = if case .string(let text)? = result["reason"], !text.isEmpty { text } else { nil }
            switch result["allow"] {
            case .bool(true)?: return Verdict(isAllowed: true, reason: reason ?? "allowed")
            case .bool(false)?: return deny(reason ?? "denied, without a reason")
            case nil, .null?: return deny("the external decision's result has no allow")
            case _?: return deny("the external decision's result.allow is not true or false")
            }
        case _?:
            return deny("the external decision's result is not an object")
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// Posts a decision request; the integrator's HTTP client implements it, tests fake it.
protocol ExternalDecisionClient: Sendable {
    /// POSTs `body` (JSON) to `url` and reports what happened, giving up after `timeoutSeconds`.
    func post(url: String, body: Data, timeoutSeconds: Double) async -> ExternalDecision.Outcome
}

extension Policy {
    /// Decides `request` locally and, when the policy allows and names an external decision endpoint, asks it
    /// too through `client`: both must allow. The reason says who decided.
    func decide(
        _ request: PolicyRequest, attributes: KubernetesRequestAttributes?,
        consulting client: any ExternalDecisionClient
    ) async -> PolicyDecision {
        let decision = self.decide(request)
        guard decision.isAllowed, let external = self.externalDecision else { return decision }
        var bindingLabel: String? = nil
        if case .binding(let index, _)? = decision.rule { bindingLabel = self.label(ofBinding: index) }
        let input = ExternalDecision.Input(
            request: request, attributes: attributes, decision: decision, bindingLabel: bindingLabel)
        let outcome = await client.post(
            url: external.url, body: ExternalDecision.requestBody(input), timeoutSeconds: external.timeoutSeconds)
        let verdict = ExternalDecision.interpret(outcome, timeoutSeconds: external.timeoutSeconds)
        guard verdict.isAllowed else {
            return .deny("\(decision.reason), but the external decision denies: \(verdict.reason)")
        }
        var allowed = decision
        allowed.reason += "; the external decision allows: \(verdict.reason)"
        return allowed
    }
}
