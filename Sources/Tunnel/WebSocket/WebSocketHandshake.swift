import COpenSSL
import Foundation

/// The opening handshake's shared parts (RFC 6455 §4): the accept value and the header lists.
package enum WebSocketHandshake {
    /// The GUID RFC 6455 §1.3 appends to the key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)), SHA-1 from OpenSSL's EVP.
    package static func acceptValue(forKey key: String) -> String {
        let input = Array((key + Self.guid).utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        let succeeded = input.withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_sha1(), nil) == 1
        }
        precondition(succeeded && length == 20, "EVP_Digest(SHA-1) failed")
        return Data(digest).base64EncodedString()
    }

    /// Whether `key` is a valid `Sec-WebSocket-Key`: 16 bytes in padded base64 (24 characters).
    package static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 24, let decoded = Data(base64Encoded: key) else { return false }
        return decoded.count == 16
    }

    /// A fresh key: 16 random bytes in base64.
    package static func makeKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// The comma-separated values of every field of this name, trimmed, with their case kept (subprotocol names
    /// compare exactly).
    static func listValues(_ headers: HTTPHeaders, _ name: String) -> [String] {
        headers[all: name].flatMap { value in
            value.utf8.split(separator: UInt8(ascii: ",")).map {
                String(decoding: $0.trimmingOptionalWhitespace(), as: UTF8.self)
            }.filter { !$0.isEmpty }
        }
    }
}
