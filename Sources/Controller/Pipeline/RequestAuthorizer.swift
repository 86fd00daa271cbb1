import Tunnel

/// The decision every authenticated request gets before it is routed: allowed or not, and why.
struct AuthorizationDecision: Sendable, Equatable {
    var isAllowed: Bool
    /// Says which rule decided: written to the audit trail, and to the user when denied.
    var reason: String
}

/// The one decision point of the pipeline. Each decision, allow or deny, goes to the audit hook.
protocol RequestAuthorizer: Sendable {
    func decide(_ request: UserRequest, route: Route) -> AuthorizationDecision
}

/// Porthole's own credentials are their own authorization: a service token or user certificate names the one
/// service it grants, and authentication has already matched the request to it.
struct CredentialScopeAuthorizer: RequestAuthorizer {
    /// Called with every decision (the audit trail's hook); nil writes nothing.
    var audit: (@Sendable (UserRequest, Route, AuthorizationDecision) -> Void)?

    func decide(_ request: UserRequest, route: Route) -> AuthorizationDecision {
        let decision = AuthorizationDecision(
            isAllowed: true, reason: "the credential of \(route.user) grants \(route.agent)/\(route.serviceKey)")
        self.audit?(request, route, decision)
        return decision
    }
}
