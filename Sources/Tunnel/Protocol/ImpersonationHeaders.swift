/// The gateway identity a tunnel request carries (`porthole-identity-user`, `porthole-identity-group`), turned
/// into Kubernetes impersonation headers for a service with `impersonate: true`: `Impersonate-User` once and one
/// `Impersonate-Group` per group. The controller sets the tunnel headers only from an identity it verified and
/// drops any `porthole-*` header a user sends; without a user, nothing is added, and the service account acts.
package struct ImpersonationHeaders: Sendable, Equatable {
    package private(set) var user: String?
    package private(set) var groups: [String] = []

    package init() {}

    /// Takes one tunnel header field; other fields are ignored.
    package mutating func note(_ field: HTTPField) {
        switch field.name {
        case TunnelProtocol.identityUserHeader where self.user == nil: self.user = field.value
        case TunnelProtocol.identityGroupHeader: self.groups.append(field.value)
        default: break
        }
    }

    /// The backend header fields: none without a user, and none for a `system:` user. Groups in Kubernetes'
    /// reserved `system:` namespace (`system:masters`, …) are never impersonated, whatever the identity provider or
    /// a gateway's headers claim: only the cluster itself hands those out.
    package var fields: [HTTPField] {
        guard let user = self.user, !user.isEmpty, !Self.isReserved(user) else { return [] }
        return [HTTPField("Impersonate-User", user)]
            + self.groups.filter { !Self.isReserved($0) }.map { HTTPField("Impersonate-Group", $0) }
    }

    /// Names in Kubernetes' reserved `system:` namespace.
    static func isReserved(_ name: String) -> Bool {
        name.lowercased().hasPrefix("system:")
    }
}
