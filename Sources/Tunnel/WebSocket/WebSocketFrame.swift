/// Writing frames (RFC 6455 §5.2): the shortest length encoding, and the payload masked when a key is given.
package enum WebSocketFrame {
    /// The most bytes a frame header takes: 2, 8 of extended length, 4 of masking key.
    static let maximumHeaderBytes = 14

    /// The largest payload a control frame may carry.
    package static let maximumControlPayload = 125

    /// One frame's bytes. A client masks every frame (`maskingKey` non-nil); a server never does.
    package static func encode(
        _ opcode: WebSocketOpcode, payload: some Collection<UInt8>, isFinal: Bool = true, maskingKey: UInt32? = nil
    ) -> [UInt8] {
        precondition(!opcode.isControl || (isFinal && payload.count <= Self.maximumControlPayload),
                     "control frames are final and at most 125 bytes")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.maximumHeaderBytes + payload.count)
        bytes.append((isFinal ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        let count = payload.count
        if count < 126 {
            bytes.append(maskBit | UInt8(count))
        } else if count <= Int(UInt16.max) {
            bytes.append(maskBit | 126)
            bytes.append(UInt8(truncatingIfNeeded: count >> 8))
            bytes.append(UInt8(truncatingIfNeeded: count))
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: UInt64(count) >> UInt64(shift)))
            }
        }
        guard let maskingKey else {
            bytes.append(contentsOf: payload)
            return bytes
        }
        let key = Self.keyBytes(maskingKey)
        bytes.append(contentsOf: key)
        var index = 0
        for byte in payload {
            bytes.append(byte ^ key[index & 3])
            index += 1
        }
        return bytes
    }

    /// A close frame's payload: the code, then the reason as UTF-8 cut to fit 125 bytes on a character boundary.
    package static func closePayload(code: WebSocketCloseCode?, reason: String) -> [UInt8] {
        guard let code else { return [] }
        var payload = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        for scalar in reason.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            guard payload.count + encoded.count <= Self.maximumControlPayload else { break }
            payload.append(contentsOf: encoded)
        }
        return payload
    }

    /// The masking key's four bytes in wire order.
    static func keyBytes(_ key: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: key >> 24), UInt8(truncatingIfNeeded: key >> 16),
         UInt8(truncatingIfNeeded: key >> 8), UInt8(truncatingIfNeeded: key)]
    }
}
