/// Hexadecimal digits, shared by the log, request IDs and percent-decoding.
package enum Hex {
    package static let digits = Array("0123456789abcdef".utf8)

    /// The value of one hex digit, either case; nil for anything else.
    package static func value(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}
