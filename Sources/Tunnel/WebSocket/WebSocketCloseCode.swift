/// A close frame's status code (RFC 6455 §7.4).
package struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: UInt16

    package init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 1000: the purpose of the connection was fulfilled.
    package static let normalClosure = Self(rawValue: 1000)
    /// 1001: the endpoint is going away (server shutdown, page left).
    package static let goingAway = Self(rawValue: 1001)
    /// 1002: the peer broke the protocol.
    package static let protocolError = Self(rawValue: 1002)
    /// 1003: a kind of data the endpoint does not accept (text where only binary is expected).
    package static let unsupportedData = Self(rawValue: 1003)
    /// 1005: a close frame without a code; never sent on the wire.
    package static let noStatusReceived = Self(rawValue: 1005)
    /// 1006: the connection dropped without a close frame; never sent on the wire.
    package static let abnormalClosure = Self(rawValue: 1006)
    /// 1007: a text message (or close reason) that is not UTF-8.
    package static let invalidPayload = Self(rawValue: 1007)
    /// 1008: the message breaks the endpoint's policy.
    package static let policyViolation = Self(rawValue: 1008)
    /// 1009: a frame or message over the endpoint's limit.
    package static let messageTooBig = Self(rawValue: 1009)
    /// 1010: the client needed an extension the server did not agree to.
    package static let mandatoryExtension = Self(rawValue: 1010)
    /// 1011: the server met an unexpected condition.
    package static let internalError = Self(rawValue: 1011)

    /// Whether a peer may send this code: 1000–1003 and 1007–1011 (RFC 6455's own), 3000–4999 (registered and
    /// private). 1004–1006 and 1015 are reserved, and 1012–1014 were registered later than RFC 6455; like the
    /// Autobahn test suite, this codec refuses them along with every other value.
    package var isValidOnTheWire: Bool {
        switch self.rawValue {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }

    package var description: String { String(self.rawValue) }
}
