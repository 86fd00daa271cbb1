import Foundation
import Tunnel

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

    /// A signed compact JWS (`header.claims.signature`) carrying `claims`.
    package static func sign(_ claims: ServiceTokenClaims, key: PrivateKey) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = Self.base64URL(Array(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let payload = Self.base64URL(Array(try encoder.encode(claims)))
        let signingInput = "\(header).\(payload)"
        let signature = try ES256.signature(of: Array(signingInput.utf8), key: key)
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
        guard let signature = Self.decodeBase64URL(parts[2]), signature.count == 2 * ES256.scalarLength else {
            throw ServiceTokenError.badSignature
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard ES256.isValidSignature(signature, over: signingInput, certificate: certificate) else {
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
}
