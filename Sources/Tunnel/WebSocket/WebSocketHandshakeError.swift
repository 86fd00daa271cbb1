/// Why an opening handshake was refused: by this server (with the status to answer) or by this client.
package enum WebSocketHandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request's method was not GET.
    case methodNotGET(String)
    /// The request was not HTTP/1.1 or later.
    case httpVersionTooOld(String)
    /// No `Upgrade: websocket`.
    case missingUpgrade
    /// No `Upgrade` token in `Connection`.
    case missingConnectionUpgrade
    /// `Sec-WebSocket-Version` was not 13 (the answer carries `Sec-WebSocket-Version: 13`).
    case unsupportedVersion(String?)
    /// `Sec-WebSocket-Key` missing, repeated, or not 16 bytes in base64.
    case invalidKey
    /// The origin hook refused the request's `Origin` (nil when there was none).
    case originRefused(String?)
    /// A subprotocol is required and the client offered none of this server's.
    case noCommonSubprotocol(offered: [String])
    /// The server answered with another status than 101.
    case unexpectedStatus(Int)
    /// The server's `Sec-WebSocket-Accept` did not match the key.
    case acceptMismatch
    /// The server chose a subprotocol this client did not offer.
    case unofferedSubprotocol(String)
    /// The server agreed to an extension this client did not ask for.
    case unrequestedExtension(String)

    /// The status a server answers the refused request with.
    package var status: Int {
        switch self {
        case .methodNotGET: 405
        case .unsupportedVersion: 426
        case .originRefused: 403
        default: 400
        }
    }

    /// The response head a server sends for this refusal (without a body; the owner adds `Content-Length`).
    package var refusalHead: HTTPResponseHead {
        var head = HTTPResponseHead(status: self.status, reason: Self.reasons[self.status] ?? "Bad Request")
        switch self {
        case .unsupportedVersion: head.headers.add(name: "Sec-WebSocket-Version", value: "13")
        case .methodNotGET: head.headers.add(name: "Allow", value: "GET")
        default: break
        }
        return head
    }

    private static let reasons = [400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
                                  426: "Upgrade Required"]

    package var description: String {
        switch self {
        case .methodNotGET(let method): "WebSocket handshake with method \(method), not GET"
        case .httpVersionTooOld(let version): "WebSocket handshake over \(version), not HTTP/1.1"
        case .missingUpgrade: "no Upgrade: websocket"
        case .missingConnectionUpgrade: "no Connection: Upgrade"
        case .unsupportedVersion(let version): "Sec-WebSocket-Version \(version ?? "missing"), not 13"
        case .invalidKey: "Sec-WebSocket-Key is not 16 bytes in base64"
        case .originRefused(let origin): "origin \(origin ?? "(none)") refused"
        case .noCommonSubprotocol(let offered): "no common subprotocol (offered: \(offered.joined(separator: ", ")))"
        case .unexpectedStatus(let status): "WebSocket upgrade answered with status \(status)"
        case .acceptMismatch: "Sec-WebSocket-Accept does not match the key"
        case .unofferedSubprotocol(let name): "server chose subprotocol \(name), which was not offered"
        case .unrequestedExtension(let name): "server agreed to extension \(name), which was not requested"
        }
    }
}
