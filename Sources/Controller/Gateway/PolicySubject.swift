/// The person a request speaks for, as the gateway verified them: the input of every policy decision.
struct PolicySubject: Sendable, Hashable, Codable {
    /// The username claim (`email`, `preferred_username` or `sub`, as configured).
    var username: String
    /// The email claim, when the token has one; bindings' `users` may name it.
    var email: String?
    /// Identity-provider groups, after any configured prefix.
    var groups: [String]

    /// A subject with `groups`.
    init(username: String, email: String? = nil, groups: [String]) {
        self.username = username
        self.email = email
        self.groups = groups
    }

    /// `groups [dev, ops]`, or `user alice (no groups)`, for messages.
    var groupsText: String {
        self.groups.isEmpty ? "user \(self.username) (no groups)" : "groups [\(self.groups.joined(separator: ", "))]"
    }
}

/// Which part of a cluster a request touches.
enum PolicyScope: Sendable, Hashable {
    /// One namespace, with its labels when known (bindings with a `namespaceSelector` need them).
    case namespace(String, labels: [String: String]?)
    /// Cluster-scoped resources (`nodes`) and lists across every namespace (`/api/v1/pods`): only bindings whose
    /// namespaces are `"*"` without a selector reach them.
    case allNamespaces
    /// Paths outside any resource (`/version`, `/apis`, `/healthz`): any binding on the cluster reaches them.
    case cluster

    /// `namespace payments`, `all namespaces`, `the cluster's non-resource paths`.
    var text: String {
        switch self {
        case .namespace(let name, _): "namespace \(name)"
        case .allNamespaces: "all namespaces"
        case .cluster: "non-resource paths"
        }
    }
}

/// One question to the policy: may `subject` do `operation` in `scope` of `cluster`?
struct PolicyRequest: Sendable, Hashable {
    /// Who asks.
    var subject: PolicySubject
    /// The agent name.
    var cluster: String
    /// Where in the cluster.
    var scope: PolicyScope
    /// What they want to do.
    var operation: PolicyOperation

    /// A question.
    init(subject: PolicySubject, cluster: String, scope: PolicyScope, operation: PolicyOperation) {
        self.subject = subject
        self.cluster = cluster
        self.scope = scope
        self.operation = operation
    }
}

/// The answer to a `PolicyRequest`: allowed or not, why, and the rule that allowed it.
struct PolicyDecision: Sendable, Equatable {
    /// The rule that allowed a request.
    enum Rule: Sendable, Equatable {
        /// The subject is in this admin group.
        case admin(group: String)
        /// This binding (at this index of `bindings`) granted it.
        case binding(index: Int, PolicyBinding)
    }

    /// Whether the request may proceed.
    var isAllowed: Bool
    /// The rule that matched, or what is missing; for the user and the audit line.
    var reason: String
    /// The rule that allowed the request; nil when denied.
    var rule: Rule?

    /// An allow by `rule`.
    static func allow(_ reason: String, rule: Rule) -> PolicyDecision {
        PolicyDecision(isAllowed: true, reason: reason, rule: rule)
    }

    /// A deny.
    static func deny(_ reason: String) -> PolicyDecision {
        PolicyDecision(isAllowed: false, reason: reason, rule: nil)
    }

    /// The binding that allowed the request, if a binding did.
    var binding: PolicyBinding? {
        if case .binding(_, let binding) = self.rule { return binding }
        return nil
    }

    /// Debug-session limits for an allowed request: the binding's, or the defaults for admins and bindings that set
    /// none. Nil when denied.
    var debugLimits: DebugLimits? {
        switch self.rule {
        case .binding(_, let binding): binding.debug ?? DebugLimits()
        case .admin: DebugLimits()
        case nil: nil
        }
    }
}
