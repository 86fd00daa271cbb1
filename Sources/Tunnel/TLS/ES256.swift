import COpenSSL
import CTunnelShims

/// ECDSA P-256 with SHA-256 in the form JWS wants (RFC 7518 section 3.4): raw r || s, 32 bytes each, not DER.
package enum ES256 {
    /// Length of each of r and s in a P-256 signature.
    package static let scalarLength = 32

    /// The raw r || s signature of `message` by `key`.
    package static func signature(of message: [UInt8], key: PrivateKey) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLError(call: "EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        ERR_clear_error()
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key.pkey) == 1 else {
            throw OpenSSLError(call: "EVP_DigestSignInit")
        }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, message, message.count) == 1 else {
            throw OpenSSLError(call: "EVP_DigestSign")
        }
        var der = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &der, &length, message, message.count) == 1 else {
            throw OpenSSLError(call: "EVP_DigestSign")
        }
        let signature: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, length)
        }
        guard let signature else { throw OpenSSLError(call: "d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(signature) }
        var raw = [UInt8](repeating: 0, count: 2 * Self.scalarLength)
        guard BN_bn2binpad(ECDSA_SIG_get0_r(signature), &raw, Int32(Self.scalarLength)) == Self.scalarLength,
            raw.withUnsafeMutableBufferPointer({
                BN_bn2binpad(ECDSA_SIG_get0_s(signature), $0.baseAddress! + Self.scalarLength, Int32(Self.scalarLength))
            }) == Self.scalarLength
        else { throw OpenSSLError(call: "BN_bn2binpad") }
        return raw
    }

    /// Whether `raw` (r || s) is a signature of `message` by the EC key of `certificate`.
    package static func isValidSignature(_ raw: [UInt8], over message: [UInt8], certificate: Certificate) -> Bool {
        defer { ERR_clear_error() }
        guard raw.count == 2 * Self.scalarLength, let publicKey = X509_get0_pubkey(certificate.x509),
            EVP_PKEY_get_base_id(publicKey) == EVP_PKEY_EC, let signature = ECDSA_SIG_new()
        else { return false }
        defer { ECDSA_SIG_free(signature) }
        let r = BN_bin2bn(raw, Int32(Self.scalarLength), nil)
        let s = raw.withUnsafeBufferPointer {
            BN_bin2bn($0.baseAddress! + Self.scalarLength, Int32(Self.scalarLength), nil)
        }
        guard let r, let s, ECDSA_SIG_set0(signature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            return false
        }
        var derPointer: UnsafeMutablePointer<UInt8>?
        let derLength = i2d_ECDSA_SIG(signature, &derPointer)
        guard derLength > 0, let derPointer else { return false }
        defer { CTunnelShims_OPENSSL_free(derPointer) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, publicKey) == 1 else { return false }
        return EVP_DigestVerify(context, derPointer, Int(derLength), message, message.count) == 1
    }
}
