import COpenSSL

/// SHA-256 of a token: how a verified token is remembered and mentioned without keeping the token itself.
package struct TokenDigest: Sendable, Hashable, CustomStringConvertible {
    /// The 32 digest bytes.
    package let bytes: [UInt8]

    /// The digest of `token`'s UTF-8.
    package init(of token: String) {
        self.init(of: Array(token.utf8))
    }

    /// The digest of `token`.
    package init(of token: [UInt8]) {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let status = EVP_Digest(token, token.count, &digest, &length, EVP_sha256(), nil)
        precondition(status == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        self.bytes = digest
    }

    /// The first 8 bytes in hex: enough to tell tokens apart in an audit line, useless to replay.
    package var description: String {
        String(decoding: self.bytes.prefix(8).flatMap { [Hex.digits[Int($0 >> 4)], Hex.digits[Int($0 & 0xF)]] },
               as: UTF8.self)
    }
}
