/// One entry for libFuzzer targets (and the unit tests' randomized runs): feeds untrusted bytes to the WebSocket
/// codec as a server and as a client, whole and split, and to the handshake checks. It must never crash, and a
/// split input must give the same actions as the whole one (a `precondition`, so the fuzzer keeps the input).
package enum WebSocketFuzzEntry {
    /// Small limits, so the fuzzer reaches 1009 with short inputs.
    private static let limits = WebSocketStateMachine.Limits(maximumFrameBytes: 200, maximumMessageBytes: 300)

    /// Parses `bytes` every way a peer could make the controller parse them; the first byte picks a split point.
    package static func parseUntrusted(_ bytes: [UInt8]) {
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        for role in [WebSocketStateMachine.Role.server, .client] {
            var whole = WebSocketStateMachine(role: role, limits: Self.limits, makeMaskingKey: { 0x0102_0304 })
            let wholeActions = whole.receive(bytes)
            var pieces = WebSocketStateMachine(role: role, limits: Self.limits, makeMaskingKey: { 0x0102_0304 })
            let pieceActions = pieces.receive(bytes[..<split]) + pieces.receive(bytes[split...])
            precondition(wholeActions == pieceActions, "actions depend on how the input was split")
            precondition(whole.state == pieces.state)
            _ = whole.sendText("x")
            _ = whole.close()
        }
        Self.handshake(bytes)
        _ = KubernetesChannel.decode(bytes)
        _ = KubernetesChannel.exitStatus(fromErrorStream: bytes)
    }

    /// The bytes as header lines (`Name: value` separated by CRLF) of an upgrade request and of its answer.
    private static func handshake(_ bytes: [UInt8]) {
        var headers = HTTPHeaders()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            headers.add(name: String(decoding: line[..<colon], as: UTF8.self),
                        value: String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingOptionalWhitespace())
        }
        let server = WebSocketServerHandshake(subprotocols: KubernetesChannelProtocol.offered) { $0 != nil }
        _ = try? server.accept(HTTPRequestHead(method: "GET", target: "/", headers: headers))
        let client = WebSocketClientHandshake(
            subprotocols: KubernetesChannelProtocol.offered, key: "dGhlIHNhbXBsZSBub25jZQ==")
        _ = try? client.accept(HTTPResponseHead(status: 101, headers: headers))
    }
}
