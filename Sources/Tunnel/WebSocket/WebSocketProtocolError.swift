/// Why this end failed a WebSocket connection, and the close code it sent the peer.
package struct WebSocketProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The code sent in the close frame (1002, 1007 or 1009).
    package let closeCode: WebSocketCloseCode
    /// What the peer did, for logs; it never carries payload bytes.
    package let reason: String

    package init(closeCode: WebSocketCloseCode, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    package var description: String { "WebSocket \(self.closeCode): \(self.reason)" }

    static func protocolError(_ reason: String) -> Self { Self(closeCode: .protocolError, reason: reason) }
    static func tooBig(_ reason: String) -> Self { Self(closeCode: .messageTooBig, reason: reason) }
    static func invalidUTF8(_ reason: String) -> Self { Self(closeCode: .invalidPayload, reason: reason) }
}
