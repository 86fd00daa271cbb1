/// Who a certificate speaks for, as named by its SPIFFE URI SAN `spiffe://TRUST/KIND/...`.
package enum EndpointIdentity: Hashable, Sendable, CustomStringConvertible {
    /// An agent (`spiffe://TRUST/agent/AGENT`), accepted on the agent listener.
    case agent(name: String)
    /// An operator or tool (`spiffe://TRUST/control/NAME`), accepted on the control listener.
    case control(name: String)
    /// A kubectl user of one agent's Kubernetes service (`spiffe://TRUST/kubernetes/AGENT/SERVICE`).
    case kubernetes(agent: String, service: String)
    /// A client of another HTTP service (`spiffe://TRUST/service/TYPE/AGENT/SERVICE`).
    case service(type: String, agent: String, service: String)
    /// An API gateway that forwards end-user identity (`spiffe://TRUST/gateway/NAME`).
    case gateway(name: String)

    /// Parses a SPIFFE URI; `nil` if it belongs to another trust domain or is malformed.
    ///
    /// Every component must be non-empty and made of `[A-Za-z0-9._-]`.
    package init?(uri: String, trustDomain: String) {
        let prefix = "spiffe://\(trustDomain)/"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.dropFirst().allSatisfy(Self.isValidComponent) else { return nil }
        switch (parts[0], parts.count) {
        case ("agent", 2): self = .agent(name: parts[1])
        case ("control", 2): self = .control(name: parts[1])
        case ("kubernetes", 3): self = .kubernetes(agent: parts[1], service: parts[2])
        case ("service", 4): self = .service(type: parts[1], agent: parts[2], service: parts[3])
        case ("gateway", 2): self = .gateway(name: parts[1])
        default: return nil
        }
    }

    /// The identity found in `certificate`: its one URI SAN in `trustDomain` that parses; `nil` if none or several.
    package static func from(certificate: Certificate, trustDomain: String) -> EndpointIdentity? {
        let prefix = "spiffe://\(trustDomain)/"
        let candidates = certificate.uriSANs.filter { $0.hasPrefix(prefix) }
        guard candidates.count == 1 else { return nil }
        return EndpointIdentity(uri: candidates[0], trustDomain: trustDomain)
    }

    /// Whether `component` may appear as one path segment of an identity URI.
    package static func isValidComponent(_ component: String) -> Bool {
        !component.isEmpty
            && component.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }

    /// The SPIFFE URI naming this identity in `trustDomain`.
    package func uri(trustDomain: String) -> String {
        "spiffe://\(trustDomain)/\(self.path)"
    }

    /// The endpoint type: `agent`, `control`, `kubernetes`, `service` or `gateway`.
    package var kind: String {
        switch self {
        case .agent: "agent"
        case .control: "control"
        case .kubernetes: "kubernetes"
        case .service: "service"
        case .gateway: "gateway"
        }
    }

    /// The URI path without trust domain, e.g. `kubernetes/edge-1/default`.
    package var description: String {
        self.path
    }

    private var path: String {
        switch self {
        case .agent(let name): "agent/\(name)"
        case .control(let name): "control/\(name)"
        case .kubernetes(let agent, let service): "kubernetes/\(agent)/\(service)"
        case .service(let type, let agent, let service): "service/\(type)/\(agent)/\(service)"
        case .gateway(let name): "gateway/\(name)"
        }
    }
}
