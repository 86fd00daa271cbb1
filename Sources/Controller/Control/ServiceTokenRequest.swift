import Tunnel

/// A validated `POST /api/v1/service-tokens` body: a bearer token for one agent's service of one type.
package struct ServiceTokenRequest: Equatable, Sendable {
    /// Agent whose service the token reaches.
    package var agent: String
    /// Service type: `kubernetes`, `jenkins`, `argocd` or a custom `x-…` type.
    package var type: String
    /// Service name; `default` when the request gives none.
    package var service: String
    /// Token subject; `nil` means the caller.
    package var user: String?
    /// Lifetime of the token, in seconds.
    package var ttlSeconds: Int

    /// A request with every field given.
    package init(agent: String, type: String, service: String, user: String?, ttlSeconds: Int) {
        self.agent = agent
        self.type = type
        self.service = service
        self.user = user
        self.ttlSeconds = ttlSeconds
    }

    /// Parses `{"agent", "type", "service"?, "user"?, "ttl"?}`; `ttl` defaults to `defaultTTLSeconds` and one above
    /// `maxTTLSeconds` is refused.
    package init(json: [UInt8], defaultTTLSeconds: Int, maxTTLSeconds: Int) throws(ControlRequestError) {
        let body = try ControlRequestBody(json: json, allowed: ["agent", "type", "service", "user", "ttl"])
        self.agent = try body.name("agent")
        self.type = try body.name("type")
        guard ServiceTypes.isKnown(self.type), self.type == self.type.lowercased() else {
            throw ControlRequestError(
                "type: \"\(self.type)\" is not one of \(ServiceTypes.builtIn.joined(separator: ", ")) "
                    + "or a lowercase custom x-… type")
        }
        self.service = try body.name("service", default: "default")
        self.user = try body.string("user") != nil ? try body.userName("user", default: "") : nil
        self.ttlSeconds = try body.seconds("ttl", default: defaultTTLSeconds, max: maxTTLSeconds)
    }
}
