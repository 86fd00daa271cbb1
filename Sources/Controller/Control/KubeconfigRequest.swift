import Tunnel

/// A validated `POST /api/v1/kubeconfigs` body: whose kubeconfig, for which agent's Kubernetes service, how long.
package struct KubeconfigRequest: Equatable, Sendable {
    /// Agent whose Kubernetes service the kubeconfig reaches.
    package var agent: String
    /// Name of that service; `default` when the request gives none.
    package var service: String
    /// The human or tool the client certificate is for (its CN).
    package var user: String
    /// Lifetime of the client certificate, in seconds.
    package var ttlSeconds: Int

    /// A request with every field given.
    package init(agent: String, service: String, user: String, ttlSeconds: Int) {
        self.agent = agent
        self.service = service
        self.user = user
        self.ttlSeconds = ttlSeconds
    }

    /// Parses `{"agent", "service"?, "user"?, "ttl"?}`; `user` defaults to `defaultUser` (the caller), `ttl` to
    /// `defaultTTLSeconds`, and a `ttl` above `maxTTLSeconds` is refused.
    package init(
        json: [UInt8], defaultUser: String, defaultTTLSeconds: Int, maxTTLSeconds: Int
    ) throws(ControlRequestError) {
        let body = try ControlRequestBody(json: json, allowed: ["agent", "service", "user", "ttl"])
        self.agent = try body.name("agent")
        self.service = try body.name("service", default: "default")
        self.user = try body.userName("user", default: defaultUser)
        self.ttlSeconds = try body.seconds("ttl", default: defaultTTLSeconds, max: maxTTLSeconds)
    }
}
