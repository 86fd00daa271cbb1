/// Which headers cross which hop: the one rule for the controller, the agent and both directions, as data.
///
/// Every header name falls in one `Kind`. The controller passes only end-to-end headers from a user to the tunnel
/// and adds its own (`TunnelProtocol`'s `porthole-*` and the forwarding headers); the agent passes end-to-end and
/// forwarding headers to the backend and adds the service's credentials; responses lose hop-by-hop headers,
/// credentials and Porthole's own. Headers named in `Connection` are hop-by-hop for that message too.
package enum HeaderRules {
    /// What a header is, for forwarding purposes.
    package enum Kind: String, Sendable, CaseIterable {
        /// Travels from end to end unchanged.
        case endToEnd
        /// Belongs to one connection (RFC 9110 §7.6.1, plus HTTP/2's `http2-settings`).
        case hopByHop
        /// A user's credentials: never leave the controller.
        case credential
        /// Says who the user is or which URL was asked for; a backend or a proxy in front of it might believe it.
        case identityClaim
        /// Says where the request came from; the controller replaces the user's with its own.
        case forwardingClaim
        /// Porthole's own tunnel headers (`porthole-*`): only Porthole sets them.
        case tunnel
        /// `Host`: each hop sets its own (`:authority` on the tunnel, the backend's host at the agent).
        case host
        /// An HTTP/2 pseudo-header (`:path`), carried separately.
        case pseudo
    }

    /// Names with a fixed kind; anything not here and not matching `prefixes` is end-to-end, unless its name has an
    /// underscore: CGI and WSGI backends, and nginx with `underscores_in_headers`, read `Impersonate_User` as
    /// `Impersonate-User`, so every underscored name counts as an identity claim.
    package static let names: [String: Kind] = [
        "connection": .hopByHop, "keep-alive": .hopByHop, "proxy-connection": .hopByHop, "te": .hopByHop,
        "trailer": .hopByHop, "transfer-encoding": .hopByHop, "upgrade": .hopByHop, "proxy-authenticate": .hopByHop,
        "http2-settings": .hopByHop,
        "authorization": .credential, "proxy-authorization": .credential, "cookie": .credential,
        "x-forwarded-client-cert": .credential, "x-porthole-id-token": .credential,
        "x-forwarded-access-token": .credential, "x-forwarded-id-token": .credential, "x-id-token": .credential,
        "x-forwarded-user": .identityClaim, "x-forwarded-groups": .identityClaim, "x-forwarded-email": .identityClaim,
        "x-forwarded-preferred-username": .identityClaim, "remote-user": .identityClaim,
        "remote-groups": .identityClaim, "remote-email": .identityClaim, "x-original-url": .identityClaim,
        "x-original-uri": .identityClaim, "x-rewrite-url": .identityClaim,
        "forwarded": .forwardingClaim, "x-forwarded-for": .forwardingClaim, "x-forwarded-host": .forwardingClaim,
        "x-forwarded-proto": .forwardingClaim, "x-forwarded-port": .forwardingClaim,
        "x-forwarded-prefix": .forwardingClaim, "x-real-ip": .forwardingClaim, "x-client-ip": .forwardingClaim,
        "true-client-ip": .forwardingClaim,
        "host": .host,
    ]

    /// Name prefixes with a fixed kind.
    package static let prefixes: [(prefix: StaticString, kind: Kind)] = [
        ("impersonate-", .credential), ("x-remote-", .identityClaim), ("x-auth-request-", .identityClaim),
        ("x-pomerium-", .identityClaim), ("porthole-", .tunnel), (":", .pseudo),
    ]

    /// The kind of a lowercased header name.
    package static func kind(of lowercasedName: String) -> Kind {
        if let kind = self.names[lowercasedName] { return kind }
        for (prefix, kind) in self.prefixes where lowercasedName.hasASCIIPrefix(prefix) { return kind }
        return lowercasedName.utf8.contains(UInt8(ascii: "_")) ? .identityClaim : .endToEnd
    }

    /// Whether the controller passes a user's request header on to the tunnel.
    package static func controllerForwards(_ lowercasedName: String) -> Bool {
        self.kind(of: lowercasedName) == .endToEnd
    }

    /// Whether the agent passes a tunnel request header on to the backend (the forwarding headers are the
    /// controller's own by then).
    package static func agentForwards(_ lowercasedName: String) -> Bool {
        switch self.kind(of: lowercasedName) {
        case .endToEnd, .forwardingClaim: true
        default: false
        }
    }

    /// Whether a backend's response header is passed back towards the user.
    package static func responseForwards(_ lowercasedName: String) -> Bool {
        switch self.kind(of: lowercasedName) {
        case .endToEnd, .forwardingClaim: true
        default: false
        }
    }

    /// The end-to-end fields of an HTTP/1.1 message, lowercased, that `forwards` accepts and `Connection` does
    /// not name.
    package static func fields(of headers: HTTPHeaders, where forwards: (String) -> Bool) -> [HTTPField] {
        let connectionTokens = headers.tokens("connection")
        var fields: [HTTPField] = []
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            let lower = name.asciiLowercased()
            if forwards(lower), connectionTokens.isEmpty || !connectionTokens.contains(lower) {
                fields.append(HTTPField(lower, value))
            }
        }
        return fields
    }
}
