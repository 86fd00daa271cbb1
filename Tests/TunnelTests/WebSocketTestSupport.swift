import Testing

@testable import Tunnel

/// Frames and feeding helpers shared by the WebSocket suites.
enum WebSocketTestSupport {
    typealias Action = WebSocketStateMachine.Action

    static let key: UInt32 = 0x37FA_213D

    /// A frame as a client sends it (masked with `key`).
    static func client(
        _ opcode: WebSocketOpcode, _ payload: [UInt8], isFinal: Bool = true, key: UInt32 = Self.key
    ) -> [UInt8] {
        WebSocketFrame.encode(opcode, payload: payload, isFinal: isFinal, maskingKey: key)
    }

    static func client(_ opcode: WebSocketOpcode, _ text: String, isFinal: Bool = true) -> [UInt8] {
        Self.client(opcode, Array(text.utf8), isFinal: isFinal)
    }

    /// A frame as a server sends it (unmasked).
    static func server(_ opcode: WebSocketOpcode, _ payload: [UInt8], isFinal: Bool = true) -> [UInt8] {
        WebSocketFrame.encode(opcode, payload: payload, isFinal: isFinal)
    }

    /// Any frame, valid or not: the first header byte, the length field as given, an optional key.
    static func raw(
        _ first: UInt8, length7: UInt8, extended: [UInt8] = [], key: [UInt8]? = [1, 2, 3, 4], payload: [UInt8] = []
    ) -> [UInt8] {
        var bytes = [first, (key == nil ? 0 : 0x80) | length7] + extended
        if let key {
            bytes += key
            bytes += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
        } else {
            bytes += payload
        }
        return bytes
    }

    static func closePayload(_ code: UInt16, _ reason: [UInt8] = []) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
    }

    static func machine(_ role: WebSocketStateMachine.Role = .server,
                        limits: WebSocketStateMachine.Limits = .init()) -> WebSocketStateMachine {
        WebSocketStateMachine(role: role, limits: limits, makeMaskingKey: { 0xA1B2_C3D4 })
    }

    /// Feeds `bytes` whole to one machine and in random pieces to others, checks they agree, returns the actions.
    static func feed(
        _ bytes: [UInt8], role: WebSocketStateMachine.Role = .server, limits: WebSocketStateMachine.Limits = .init(),
        splits: Int = 40, seed: UInt64 = 0x5EED, sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Action] {
        var whole = Self.machine(role, limits: limits)
        let expected = whole.receive(bytes)
        var random = HTTP1FuzzRandom(seed: seed)
        for _ in 0..<splits {
            var split = Self.machine(role, limits: limits)
            var actions: [Action] = []
            var index = 0
            while index < bytes.count {
                let count = Int.random(in: 1...max(1, min(bytes.count - index, Int.random(in: 1...9, using: &random))),
                                       using: &random)
                actions += split.receive(bytes[index..<(index + count)])
                index += count
            }
            #expect(actions == expected, sourceLocation: sourceLocation)
            #expect(split.state == whole.state, sourceLocation: sourceLocation)
        }
        return expected
    }

    /// The unmasked close frame a server writes with `code`.
    static func serverClose(_ code: WebSocketCloseCode, _ reason: String = "") -> Action {
        .write(WebSocketFrame.encode(.close, payload: WebSocketFrame.closePayload(code: code, reason: reason)))
    }

    /// What a server does when it fails the connection with `code`.
    static func failure(_ code: WebSocketCloseCode, _ actions: [Action]) -> Bool {
        guard actions.count >= 3, actions.last == .closeTransport,
              case .failed(let error) = actions[actions.count - 2], error.closeCode == code else { return false }
        return actions[actions.count - 3] == Self.serverClose(code)
    }
}
