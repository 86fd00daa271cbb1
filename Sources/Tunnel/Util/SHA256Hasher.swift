import COpenSSL

/// Incremental SHA-256 (OpenSSL's EVP), for digests of streams too large to hold.
package final class SHA256Hasher {
    /// EVP_MD_CTX *, owned.
    private let context: OpaquePointer

    package init() {
        guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new failed") }
        self.context = context
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex failed")
    }

    deinit {
        EVP_MD_CTX_free(self.context)
    }

    package func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            precondition(EVP_DigestUpdate(self.context, raw.baseAddress, raw.count) == 1, "EVP_DigestUpdate failed")
        }
    }

    /// The digest as lowercase hex; the hasher is spent afterwards.
    package func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(self.context, &digest, &length) == 1 && length == 32, "EVP_DigestFinal_ex")
        return String(decoding: digest.flatMap { [Hex.digits[Int($0 >> 4)], Hex.digits[Int($0 & 0xF)]] },
                      as: UTF8.self)
    }
}
