import COpenSSL
import CTunnelShims

/// A public key that verifies JWS signatures: RSA (2048 to 8192 bits), EC P-256 or Ed25519.
///
/// Built from a DER SubjectPublicKeyInfo, which OpenSSL decodes and checks (point on the curve; RSA modulus odd and
/// composite, exponent odd and above 1). Immutable after init, so it may be shared between threads.
package final class PublicKey: @unchecked Sendable {
    /// The kinds of key a JWK may hold here.
    package enum KeyType: String, Sendable, Hashable, CustomStringConvertible {
        case rsa = "RSA"
        case ecP256 = "EC P-256"
        case ed25519 = "OKP Ed25519"

        package var description: String { self.rawValue }
    }

    /// Smallest RSA modulus accepted, in bits.
    package static let minimumRSABits = 2048
    /// Largest RSA modulus accepted, in bits: bounds the cost of one verification.
    package static let maximumRSABits = 8192

    let pkey: OpaquePointer  // EVP_PKEY *, owned
    /// What kind of key this is.
    package let type: KeyType

    /// Wraps `pkey`, which this object frees.
    init(takingOwnershipOf pkey: OpaquePointer, type: KeyType) {
        self.pkey = pkey
        self.type = type
    }

    deinit {
        EVP_PKEY_free(self.pkey)
    }

    /// An RSA key from the big-endian modulus and exponent of a JWK (`n`, `e`).
    package static func rsa(modulus: [UInt8], exponent: [UInt8]) throws(JWKError) -> PublicKey {
        let modulus = Array(modulus.drop { $0 == 0 })
        let exponent = Array(exponent.drop { $0 == 0 })
        guard !modulus.isEmpty, !exponent.isEmpty, exponent.count <= 32 else {
            throw .malformed("RSA modulus or exponent is empty or too long")
        }
        guard modulus.count * 8 <= Self.maximumRSABits else { throw .weakOrOversizedKey }
        let publicKey = DER.sequence(DER.integer(modulus) + DER.integer(exponent))
        let algorithm = DER.sequence(DER.objectIdentifier(DER.rsaEncryption) + DER.null)
        let key = try Self.decode(DER.sequence(algorithm + DER.bitString(publicKey)), type: .rsa)
        let bits = Int(EVP_PKEY_get_bits(key.pkey))
        guard bits >= Self.minimumRSABits, bits <= Self.maximumRSABits else { throw .weakOrOversizedKey }
        return key
    }

    /// A P-256 key from the 32-byte big-endian coordinates of a JWK (`x`, `y`); refused if not on the curve.
    package static func p256(x: [UInt8], y: [UInt8]) throws(JWKError) -> PublicKey {
        guard x.count == 32, y.count == 32 else { throw .malformed("P-256 coordinates must be 32 bytes each") }
        let algorithm = DER.sequence(DER.objectIdentifier(DER.ecPublicKey) + DER.objectIdentifier(DER.prime256v1))
        return try Self.decode(DER.sequence(algorithm + DER.bitString([0x04] + x + y)), type: .ecP256)
    }

    /// An Ed25519 key from the 32 bytes of a JWK's `x`.
    package static func ed25519(x: [UInt8]) throws(JWKError) -> PublicKey {
        guard x.count == 32 else { throw .malformed("Ed25519 public key must be 32 bytes") }
        let algorithm = DER.sequence(DER.objectIdentifier(DER.ed25519))
        return try Self.decode(DER.sequence(algorithm + DER.bitString(x)), type: .ed25519)
    }

    /// Decodes a SubjectPublicKeyInfo and runs OpenSSL's public-key check on it.
    private static func decode(_ der: [UInt8], type: KeyType) throws(JWKError) -> PublicKey {
        ERR_clear_error()
        let decoded: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let decoded else { throw .openSSL(OpenSSLError(call: "d2i_PUBKEY")) }
        let key = PublicKey(takingOwnershipOf: decoded, type: type)
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key.pkey, nil) else {
            throw .openSSL(OpenSSLError(call: "EVP_PKEY_CTX_new_from_pkey"))
        }
        defer { EVP_PKEY_CTX_free(context) }  // EVP_PKEY_CTX *, owned here
        guard EVP_PKEY_public_check(context) == 1 else {
            throw .openSSL(OpenSSLError(call: "EVP_PKEY_public_check"))
        }
        return key
    }

    /// Whether `signature` is this key's JWS signature over `message` under `algorithm`. False, never a throw, for
    /// every malformed signature; the caller has checked that `algorithm` fits this key's type.
    func isValidSignature(_ signature: [UInt8], over message: [UInt8], algorithm: JWSAlgorithm) -> Bool {
        precondition(algorithm.keyType == self.type, "\(algorithm) on a \(self.type) key")
        defer { ERR_clear_error() }
        switch algorithm {
        case .rs256:
            guard signature.count == Int(EVP_PKEY_get_size(self.pkey)) else { return false }
            return self.digestVerify(signature, over: message, digest: EVP_sha256())
        case .es256:
            guard let der = Self.derECDSASignature(fromRaw: signature) else { return false }
            return self.digestVerify(der, over: message, digest: EVP_sha256())
        case .edDSA:
            guard signature.count == 64 else { return false }
            return self.digestVerify(signature, over: message, digest: nil)
        }
    }

    private func digestVerify(_ signature: [UInt8], over message: [UInt8], digest: OpaquePointer?) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }  // EVP_MD_CTX *, owned here
        defer { EVP_MD_CTX_free(context) }
        ERR_clear_error()
        guard EVP_DigestVerifyInit(context, nil, digest, nil, self.pkey) == 1 else { return false }
        return EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }

    /// JOSE's raw ES256 signature (r || s, 32 bytes each) as the DER ECDSA-Sig-Value OpenSSL verifies; nil for any
    /// other length.
    static func derECDSASignature(fromRaw raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64 else { return nil }
        let r = Array(raw[0..<32].drop { $0 == 0 })
        let s = Array(raw[32..<64].drop { $0 == 0 })
        guard !r.isEmpty, !s.isEmpty else { return nil }
        return DER.sequence(DER.integer(r) + DER.integer(s))
    }
}

/// Just enough DER to write a SubjectPublicKeyInfo and an ECDSA signature.
enum DER {
    static let rsaEncryption: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]  // 1.2.840.113549.1.1.1
    static let ecPublicKey: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]  // 1.2.840.10045.2.1
    static let prime256v1: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]  // 1.2.840.10045.3.1.7
    static let ed25519: [UInt8] = [0x2B, 0x65, 0x70]  // 1.3.101.112
    static let null: [UInt8] = [0x05, 0x00]

    static func sequence(_ content: [UInt8]) -> [UInt8] { Self.element(0x30, content) }
    static func objectIdentifier(_ content: [UInt8]) -> [UInt8] { Self.element(0x06, content) }
    static func bitString(_ content: [UInt8]) -> [UInt8] { Self.element(0x03, [0x00] + content) }

    /// A non-negative INTEGER from big-endian magnitude bytes without leading zeros.
    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        Self.element(0x02, (magnitude.first ?? 0x80) >= 0x80 ? [0x00] + magnitude : magnitude)
    }

    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        if content.count < 0x80 {
            length = [UInt8(content.count)]
        } else {
            var remaining = content.count
            while remaining > 0 {
                length.insert(UInt8(remaining & 0xFF), at: 0)
                remaining >>= 8
            }
            length.insert(0x80 | UInt8(length.count), at: 0)
        }
        return [tag] + length + content
    }
}
