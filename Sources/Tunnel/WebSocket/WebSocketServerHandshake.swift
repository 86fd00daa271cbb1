/// The server side of the opening handshake (RFC 6455 §4.2): checks a browser's upgrade request and builds the
/// 101 answer, or says which refusal to send.
package struct WebSocketServerHandshake: Sendable {
    /// A request that may be upgraded: the answer to write and what was agreed.
    package struct Acceptance: Sendable, Equatable {
        /// `101 Switching Protocols` with `Upgrade`, `Connection`, `Sec-WebSocket-Accept` and the subprotocol.
        package var responseHead: HTTPResponseHead
        /// The subprotocol chosen, nil when none was.
        package var subprotocol: String?
    }

    /// The subprotocols this server speaks, most preferred first.
    package var subprotocols: [String]
    /// Whether a client that offers none of `subprotocols` is refused (otherwise it gets no subprotocol).
    package var requiresSubprotocol: Bool
    /// Decides the request's `Origin` (nil when absent); browsers always send one, so a server for browsers
    /// compares it with its public origin to stop other sites' pages from connecting with the user's cookies.
    package var isOriginAllowed: @Sendable (String?) -> Bool

    package init(
        subprotocols: [String] = [], requiresSubprotocol: Bool = false,
        isOriginAllowed: @escaping @Sendable (String?) -> Bool
    ) {
        self.subprotocols = subprotocols
        self.requiresSubprotocol = requiresSubprotocol
        self.isOriginAllowed = isOriginAllowed
    }

    /// Checks an HTTP/1.1 upgrade request in the order RFC 6455 §4.2.1 lists, then the origin and subprotocol.
    package func accept(_ head: HTTPRequestHead) throws(WebSocketHandshakeError) -> Acceptance {
        guard head.method == "GET" else { throw .methodNotGET(head.method) }
        guard head.version == "HTTP/1.1" else { throw .httpVersionTooOld(head.version) }
        guard head.headers.tokens("Upgrade").contains("websocket") else { throw .missingUpgrade }
        guard head.headers.tokens("Connection").contains("upgrade") else { throw .missingConnectionUpgrade }
        let keys = head.headers[all: "Sec-WebSocket-Key"]
        guard keys.count == 1, let key = keys.first?.trimmingOptionalWhitespace(),
              WebSocketHandshake.isValidKey(key) else { throw .invalidKey }
        let versions = head.headers[all: "Sec-WebSocket-Version"]
        guard versions.count == 1, versions[0].trimmingOptionalWhitespace() == "13" else {
            throw .unsupportedVersion(versions.first)
        }
        let origin = head.headers[first: "Origin"]
        guard self.isOriginAllowed(origin) else { throw .originRefused(origin) }
        let offered = WebSocketHandshake.listValues(head.headers, "Sec-WebSocket-Protocol")
        let chosen = self.subprotocols.first { offered.contains($0) }
        if chosen == nil && self.requiresSubprotocol { throw .noCommonSubprotocol(offered: offered) }

        var response = HTTPResponseHead(status: 101, reason: "Switching Protocols")
        response.headers.add(name: "Upgrade", value: "websocket")
        response.headers.add(name: "Connection", value: "Upgrade")
        response.headers.add(name: "Sec-WebSocket-Accept", value: WebSocketHandshake.acceptValue(forKey: key))
        if let chosen { response.headers.add(name: "Sec-WebSocket-Protocol", value: chosen) }
        return Acceptance(responseHead: response, subprotocol: chosen)
    }
}
