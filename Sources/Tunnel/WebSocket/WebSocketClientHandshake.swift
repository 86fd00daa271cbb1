/// The client side of the opening handshake (RFC 6455 §4.1): the request's upgrade headers and the check of the
/// server's answer.
package struct WebSocketClientHandshake: Sendable, Equatable {
    /// This request's `Sec-WebSocket-Key`.
    package let key: String
    /// The subprotocols offered, most preferred first (`v5.channel.k8s.io`, `v4.channel.k8s.io`, …).
    package let subprotocols: [String]

    /// A handshake with a fresh random key, or `key` (tests).
    package init(subprotocols: [String] = [], key: String? = nil) {
        self.key = key ?? WebSocketHandshake.makeKey()
        precondition(WebSocketHandshake.isValidKey(self.key), "a key is 16 bytes in base64")
        self.subprotocols = subprotocols
    }

    /// The fields to add to a GET request (with its `Host`, and `Origin` if the client is a browser-like one).
    package var requestHeaders: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Key", value: self.key)
        headers.add(name: "Sec-WebSocket-Version", value: "13")
        if !self.subprotocols.isEmpty {
            headers.add(name: "Sec-WebSocket-Protocol", value: self.subprotocols.joined(separator: ", "))
        }
        return headers
    }

    /// Checks the server's answer (RFC 6455 §4.1, the client's checks 1–6) and returns the subprotocol it chose.
    package func accept(_ head: HTTPResponseHead) throws(WebSocketHandshakeError) -> String? {
        guard head.status == 101 else { throw .unexpectedStatus(head.status) }
        guard head.headers.tokens("Upgrade").contains("websocket") else { throw .missingUpgrade }
        guard head.headers.tokens("Connection").contains("upgrade") else { throw .missingConnectionUpgrade }
        let accepts = head.headers[all: "Sec-WebSocket-Accept"]
        guard accepts.count == 1,
              accepts[0].trimmingOptionalWhitespace() == WebSocketHandshake.acceptValue(forKey: self.key) else {
            throw .acceptMismatch
        }
        if let extensionName = WebSocketHandshake.listValues(head.headers, "Sec-WebSocket-Extensions").first {
            throw .unrequestedExtension(extensionName)
        }
        let chosen = WebSocketHandshake.listValues(head.headers, "Sec-WebSocket-Protocol")
        guard let subprotocol = chosen.first else { return nil }
        guard chosen.count == 1, self.subprotocols.contains(subprotocol) else {
            throw .unofferedSubprotocol(chosen.joined(separator: ", "))
        }
        return subprotocol
    }
}
