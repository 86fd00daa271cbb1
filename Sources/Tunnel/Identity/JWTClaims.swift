/// The claims of a JWT (RFC 7519): a JSON object, read after its signature was verified.
package struct JWTClaims: Sendable, Equatable {
    /// Every member, as parsed.
    package let members: [String: JSONValue]

    /// Claims with the given members.
    package init(members: [String: JSONValue]) {
        self.members = members
    }

    /// Parses a JWS payload as a claims set.
    package init(json bytes: [UInt8]) throws(TokenRefusal) {
        guard let members = JSONValue.parse(bytes)?.object else { throw .malformed("claims are not a JSON object") }
        self.members = members
    }

    /// The member `name`.
    package subscript(name: String) -> JSONValue? {
        self.members[name]
    }

    /// The claim at `path`: the member of that exact name if there is one (claim names may contain dots, e.g.
    /// `https://example.com/groups`), else the dot-separated path through nested objects (`realm_access.roles`).
    package func value(at path: String) -> JSONValue? {
        if let value = self.members[path] { return value }
        let components = path.split(separator: ".", omittingEmptySubsequences: false)
        guard components.count > 1 else { return nil }
        var current: JSONValue? = .object(self.members)
        for component in components {
            current = current?.object?[String(component)]
        }
        return current
    }
}
