/// A frame's opcode (RFC 6455 §5.2); the reserved values 3–7 and 11–15 have no case and are refused.
package enum WebSocketOpcode: UInt8, Sendable, Equatable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between a message's fragments.
    package var isControl: Bool { self.rawValue & 0x8 != 0 }
}
