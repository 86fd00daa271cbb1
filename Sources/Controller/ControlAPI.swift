import Foundation
import Tunnel

/// The control listener's API: list agents and mint credentials, for callers holding a control identity.
///
/// Every issued credential is logged once (who asked, what, for how long), never its key or token.
final class ControlAPI: Sendable {
    /// `iss` of every service token this controller signs.
    static let tokenIssuer = "porthole"
    /// `aud` of service tokens: the service listener, which checks it.
    static let tokenAudience = "porthole-service"
    /// Lifetime of agent credentials.
    static let agentCredentialValidity: TimeInterval = 365 * 24 * 60 * 60

    private let authority: CertificateAuthority
    private let trustDomain: String
    private let registry: AgentRegistry
    /// Where probes find a session.
    var sessions: any SessionDirectory { self.registry }
    private let configuration: ControllerConfiguration
    private let metrics: ControllerMetrics?
    private let kubeconfigs: KubeconfigBuilder

    /// The API over `registry`, minting with `authority`; kubeconfigs point at `serviceURL`.
    init(
        authority: CertificateAuthority, trustDomain: String, serviceURL: String, registry: AgentRegistry,
        configuration: ControllerConfiguration, metrics: ControllerMetrics? = nil
    ) {
        self.authority = authority
        self.trustDomain = trustDomain
        self.registry = registry
        self.configuration = configuration
        self.metrics = metrics
        self.kubeconfigs = KubeconfigBuilder(authority: authority, trustDomain: trustDomain, serviceURL: serviceURL)
    }

    /// The caller, once its control identity is checked.
    private struct Caller {
        var name: String
        var commonName: String
    }

    private struct AgentList: Encodable {
        var agents: [AgentSnapshot]
    }

    private struct IssuedToken: Encodable {
        var token: String
        var expiresAt: Date
    }

    private struct AgentCredential: Encodable {
        var certificate: String
        var key: String
        var ca: String
        var secretYAML: String
    }

    /// Answers one request; pass it as a `SimpleHTTPServer` handler.
    func handle(_ request: SimpleRequest) -> SimpleResponse {
        let identity = request.peerIdentity ?? request.peerIdentity(trustDomain: self.trustDomain)
        guard case .control(let name) = identity else {
            let reason: String
            if let identity {
                reason = "the control API needs a control identity; this certificate's identity is \(identity) "
                    + "(kind: \(identity.kind))"
            } else {
                reason = "the control API needs a client certificate with a spiffe://\(self.trustDomain)/control/NAME "
                    + "identity"
            }
            self.metrics?.authFailure(reason: "wrong_identity")
            Log.warning("control request refused", [
                "peer": request.peerAddress ?? "?", "identity": identity.map { "\($0)" } ?? "none",
                "path": request.path, "reason": reason,
            ])
            return .error(403, reason)
        }
        let caller = Caller(name: name, commonName: request.peerCommonName ?? name)
        switch request.path {
        case "/api/v1/agents":
            guard request.method == "GET" || request.method == "HEAD" else {
                return Self.methodNotAllowed(request, allowed: "GET, HEAD")
            }
            return .json(200, AgentList(agents: self.registry.snapshot()))
        case "/api/v1/kubeconfigs":
            guard request.method == "POST" else { return Self.methodNotAllowed(request, allowed: "POST") }
            return self.respond { try self.issueKubeconfig(request, caller: caller) }
        case "/api/v1/service-tokens":
            guard request.method == "POST" else { return Self.methodNotAllowed(request, allowed: "POST") }
            return self.respond { try self.issueServiceToken(request, caller: caller) }
        case "/api/v1/probes":
            guard request.method == "POST" else { return Self.methodNotAllowed(request, allowed: "POST") }
            return self.probe(request, caller: caller.name)
        case "/api/v1/agent-credentials":
            guard request.method == "POST" else { return Self.methodNotAllowed(request, allowed: "POST") }
            return self.respond { try self.issueAgentCredential(request, caller: caller) }
        case "/api/v1/gateway-credentials":
            guard request.method == "POST" else { return Self.methodNotAllowed(request, allowed: "POST") }
            return self.respond { try self.issueGatewayCredential(request, caller: caller) }
        default:
            return .error(404, "no such control API path \(request.path)")
        }
    }

    private func issueKubeconfig(_ request: SimpleRequest, caller: Caller) throws -> SimpleResponse {
        let parsed = try KubeconfigRequest(
            json: request.body, defaultUser: caller.name,
            defaultTTLSeconds: self.configuration.kubeconfigDefaultTTLSeconds,
            maxTTLSeconds: self.configuration.kubeconfigMaxTTLSeconds)
        let (kubeconfig, certificate) = try self.kubeconfigs.build(parsed)
        Log.info("credential issued", [
            "kind": "kubeconfig", "by": caller.name, "byCN": caller.commonName, "agent": parsed.agent,
            "service": parsed.service, "user": parsed.user, "ttl": "\(parsed.ttlSeconds)",
            "serial": certificate.serialNumberHex,
        ])
        return .text(200, kubeconfig.yaml, contentType: "application/yaml")
    }

    private func issueServiceToken(_ request: SimpleRequest, caller: Caller) throws -> SimpleResponse {
        let parsed = try ServiceTokenRequest(
            json: request.body, defaultTTLSeconds: self.configuration.tokenDefaultTTLSeconds,
            maxTTLSeconds: self.configuration.tokenMaxTTLSeconds)
        let now = Int(Date().timeIntervalSince1970)
        let claims = ServiceTokenClaims(
            iss: Self.tokenIssuer, aud: Self.tokenAudience, sub: parsed.user ?? "control:\(caller.name)", iat: now,
            exp: now + parsed.ttlSeconds, jti: RandomID.make(bytes: 16), type: parsed.type, agent: parsed.agent,
            service: parsed.service)
        let token = try ServiceToken.sign(claims, key: self.authority.key)
        Log.info("credential issued", [
            "kind": "service-token", "by": caller.name, "byCN": caller.commonName, "agent": parsed.agent,
            "type": parsed.type, "service": parsed.service, "user": claims.sub, "ttl": "\(parsed.ttlSeconds)",
            "jti": claims.jti,
        ])
        return .json(200, IssuedToken(token: token, expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp))))
    }

    private func issueAgentCredential(_ request: SimpleRequest, caller: Caller) throws -> SimpleResponse {
        let parsed = try AgentCredentialRequest(json: request.body)
        let now = Date()
        let identity = EndpointIdentity.agent(name: parsed.agent)
        let issued = try self.authority.issueWithNewKey(CertificateSpec(
            commonName: parsed.agent, uris: [identity.uri(trustDomain: self.trustDomain)],
            validity: Self.agentCredentialValidity + KubeconfigBuilder.clockSkewAllowance,
            notBefore: now.addingTimeInterval(-KubeconfigBuilder.clockSkewAllowance), usage: .client))
        let secret = KubernetesSecret.tls(
            name: KubernetesSecret.agentName(parsed.agent), namespace: nil, certificate: issued.certificate,
            key: issued.key, ca: self.authority.certificate)
        Log.info("credential issued", [
            "kind": "agent", "by": caller.name, "byCN": caller.commonName, "agent": parsed.agent,
            "ttl": "\(Int(Self.agentCredentialValidity))", "serial": issued.certificate.serialNumberHex,
        ])
        return .json(200, AgentCredential(
            certificate: issued.certificate.pem, key: issued.key.pem, ca: self.authority.certificate.pem,
            secretYAML: KubernetesSecret.join([secret])))
    }

    /// `{"name"}` → a `gateway/NAME` client certificate, key and CA (PEM), for an API gateway in front of the
    /// service listener; valid as long as agent credentials.
    private func issueGatewayCredential(_ request: SimpleRequest, caller: Caller) throws -> SimpleResponse {
        let body = try ControlRequestBody(json: request.body, allowed: ["name"])
        let name = try body.name("name")
        let now = Date()
        let issued = try self.authority.issueWithNewKey(CertificateSpec(
            commonName: "gateway \(name)", uris: [EndpointIdentity.gateway(name: name).uri(trustDomain: self.trustDomain)],
            validity: Self.agentCredentialValidity + KubeconfigBuilder.clockSkewAllowance,
            notBefore: now.addingTimeInterval(-KubeconfigBuilder.clockSkewAllowance), usage: .client))
        Log.info("credential issued", [
            "kind": "gateway", "by": caller.name, "byCN": caller.commonName, "gateway": name,
            "ttl": "\(Int(Self.agentCredentialValidity))", "serial": issued.certificate.serialNumberHex,
        ])
        struct GatewayCredential: Encodable {
            var certificate: String
            var key: String
            var ca: String
        }
        return .json(200, GatewayCredential(certificate: issued.certificate.pem, key: issued.key.pem,
                                            ca: self.authority.certificate.pem))
    }

    /// Runs `issue`, turning a validation error into its 400 and any other failure into a logged 500.
    private func respond(_ issue: () throws -> SimpleResponse) -> SimpleResponse {
        do {
            return try issue()
        } catch let error as ControlRequestError {
            return .error(error.status, error.reason)
        } catch {
            Log.error("issuing a credential failed", ["error": "\(error)"])
            return .error(500, "issuing the credential failed: \(error)")
        }
    }

    private static func methodNotAllowed(_ request: SimpleRequest, allowed: String) -> SimpleResponse {
        var response = SimpleResponse.error(405, "\(request.path) accepts \(allowed), not \(request.method)")
        response.headers.add(name: "Allow", value: allowed)
        return response
    }
}
