import COpenSSL
import CTunnelShims
import Foundation

/// The claims of a service token: who may reach which agent's service, for whom, until when.
package struct ServiceTokenClaims: Codable, Sendable, Equatable {
    /// Issuer: the controller's service URL or trust domain.
    package var iss: String
    /// Audience: the service listener that accepts the token.
    package var aud: String
    /// Subject: the user or tool the token was issued to.
    package var sub: String
    /// Issued at, in seconds since 1970.
    package var iat: Int
    /// Expires at, in seconds since 1970; the token is refused from this second on.
    package var exp: Int
    /// Unique token id, for audit.
    package var jti: String
    /// Service type granted, e.g. `jenkins`.
    package var type: String
    /// Agent whose service is granted.
    package var agent: String
    /// Service name granted.
    package var service: String

    /// Claims with every field given.
    package init(
        iss: String, aud: String, sub: String, iat: Int, exp: Int, jti: String, type: String, agent: String,
        service: String
    ) {
        self.iss = iss
        self.aud = aud
        self.sub = sub
        self.iat = iat
        self.exp = exp
        self.jti = jti
        self.type = type
        self.agent = agent
        self.service = service
    }
}

/// Why a service token was refused; each description is fit to show the user.
package enum ServiceTokenError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case badSignature
    case expired
    case wrongAudience
    case unsupportedAlgorithm

    package var description: String {
        switch self {
        case .malformed(let reason): "malformed service token: \(reason)"
        case .badSignature: "service token signature is not valid"
        case .expired: "service token has expired"
        case .wrongAudience: "service token is not for this audience"
        case .unsupportedAlgorithm: "service token algorithm is not supported (ES256 required)"
        }
    }
}

/// Bearer tokens for HTTP services: compact JWS, ES256-signed by the CA key, so every controller replica verifies
/// them with the CA certificate alone.
package enum ServiceToken {
    private struct Header: Codable {
        var alg: String
        var typ: String?
    }

    /// Length of each of r and s in a P-256 signature.
    private static let scalarLength = 32

    /// A signed compact JWS (`header.claims.signature`) carrying `claims`.
    package static func sign(_ claims: ServiceTokenClaims, key: PrivateKey) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = Self.base64URL(Array(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let payload = Self.base64URL(Array(try encoder.encode(claims)))
        let signingInput = "\(header).\(payload)"
        let signature = try Self.signES256(Array(signingInput.utf8), key: key)
        return "\(signingInput).\(Self.base64URL(signature))"
    }

    /// The claims of `token` if it is an ES256 JWS signed by `certificate`'s key, unexpired at `now`, for `audience`.
    package static func verify(
        _ token: String, certificate: Certificate, audience: String, now: Date = Date()
    ) throws -> ServiceTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw ServiceTokenError.malformed("expected three dot-separated parts") }
        guard let headerBytes = Self.decodeBase64URL(parts[0]),
            let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes))
        else { throw ServiceTokenError.malformed("bad header") }
        guard header.alg == "ES256" else { throw ServiceTokenError.unsupportedAlgorithm }
        guard let signature = Self.decodeBase64URL(parts[2]), signature.count == 2 * Self.scalarLength else {
            throw ServiceTokenError.badSignature
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard Self.verifyES256(signature, over: signingInput, certificate: certificate) else {
            throw ServiceTokenError.badSignature
        }
        guard let payload = Self.decodeBase64URL(parts[1]),
            let claims = try? JSONDecoder().decode(ServiceTokenClaims.self, from: Data(payload))
        else { throw ServiceTokenError.malformed("bad claims") }
        guard TimeInterval(claims.exp) > now.timeIntervalSince1970 else { throw ServiceTokenError.expired }
        guard claims.aud == audience else { throw ServiceTokenError.wrongAudience }
        return claims
    }

    /// The claims of `token` without any check: only to shape the error for a token `verify` refused after its
    /// signature passed (expired, wrong audience), never to authorize.
    package static func unverifiedClaims(_ token: String) -> ServiceTokenClaims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Self.decodeBase64URL(parts[1]) else { return nil }
        return try? JSONDecoder().decode(ServiceTokenClaims.self, from: Data(payload))
    }

    /// Base64url without padding (RFC 7515 section 2).
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") })
        else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }

    /// ECDSA P-256 with SHA-256, as JWS wants it: raw r || s, 32 bytes each.
    private static func signES256(_ message: [UInt8], key: PrivateKey) throws -> [UInt8] {
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

    private static func verifyES256(_ raw: [UInt8], over message: [UInt8], certificate: Certificate) -> Bool {
        defer { ERR_clear_error() }
        guard let publicKey = X509_get0_pubkey(certificate.x509), EVP_PKEY_get_base_id(publicKey) == EVP_PKEY_EC,
            let signature = ECDSA_SIG_new()
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
