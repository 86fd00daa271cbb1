/// Which securityContext profile a debug container gets in a namespace: the binding's (or a weaker one the user
/// asked for), if the namespace's PodSecurity `enforce` level admits it; otherwise a refusal that says why.
enum ProfileChoice: Sendable, Equatable {
    /// Use this profile.
    case use(SecurityProfile)
    /// No profile fits; the reason names the namespace level and what to ask for instead.
    case refused(String)

    /// The namespace label that holds the PodSecurity level admission enforces.
    static let enforceLabel = "pod-security.kubernetes.io/enforce"

    /// The level a namespace's `enforce` label admits: absent is `privileged` (the API server's default, which a
    /// cluster-wide admission configuration may raise; the dry run catches that); an unknown value counts as
    /// `restricted`, as Pod Security admission treats it.
    static func admittedLevel(namespaceEnforceLevel label: String?) -> SecurityProfile {
        guard let label else { return .privileged }
        return SecurityProfile(rawValue: label) ?? .restricted
    }

    /// Chooses the profile: `requested` when given (it must not exceed the binding's), else the binding's; refused
    /// when that is stronger than the namespace admits (`privileged` in a `restricted` namespace).
    static func `for`(namespaceEnforceLevel label: String?, allowedByBinding allowed: SecurityProfile,
                      requested: SecurityProfile? = nil, namespace: String? = nil) -> ProfileChoice {
        let level = self.admittedLevel(namespaceEnforceLevel: label)
        let wanted = requested ?? allowed
        if wanted > allowed {
            return .refused("the policy allows at most the \(allowed.rawValue) profile here, not \(wanted.rawValue)")
        }
        guard wanted <= level else {
            let place = namespace.map { "namespace \($0)" } ?? "the namespace"
            var reason = "\(place) enforces PodSecurity \(label ?? level.rawValue), which refuses a "
                + "\(wanted.rawValue) debug container"
            reason += "; ask for the \(level.rawValue) profile"
            return .refused(reason)
        }
        return .use(wanted)
    }
}
