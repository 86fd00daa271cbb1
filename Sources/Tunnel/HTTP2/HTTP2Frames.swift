/// Frames written by hand for the one case nghttp2 cannot frame them: after a fatal error the session is
/// finished, but the peer should still read why the connection ends.
package enum HTTP2Frames {
    /// A GOAWAY frame (RFC 9113 §6.8) on stream 0; `debugData` is cut to 256 bytes.
    package static func goAway(lastStreamID: Int32, errorCode: UInt32, debugData: String) -> [UInt8] {
        let debug = Array(debugData.utf8.prefix(256))
        let length = 8 + debug.count
        var frame: [UInt8] = [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff),
                              0x07, 0x00, 0x00, 0x00, 0x00, 0x00]
        let last = UInt32(bitPattern: max(0, lastStreamID)) & 0x7fff_ffff
        for shift in stride(from: 24, through: 0, by: -8) { frame.append(UInt8(last >> UInt32(shift) & 0xff)) }
        for shift in stride(from: 24, through: 0, by: -8) { frame.append(UInt8(errorCode >> UInt32(shift) & 0xff)) }
        return frame + debug
    }
}
