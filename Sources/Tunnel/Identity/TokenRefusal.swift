/// Why a token was refused. Each description is one audit-ready reason that carries no token material: no claim
/// value, key id or header text from the token, only names from the configuration and registered algorithm names.
package enum TokenRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// The token is not a well-formed compact JWS or JWT; the reason is fixed text.
    case malformed(String)
    /// The token is longer than `JWS.maximumLength`.
    case tooLarge
    /// `alg` is `none`: the token is not signed.
    case algorithmNone
    /// `alg` is HS256, HS384 or HS512: a shared-secret MAC, never accepted from an issuer.
    case hmacRefused
    /// `alg` is not on this issuer's allow-list; the name is a registered algorithm name or `unrecognized`.
    case algorithmNotAllowed(String)
    /// The header lists `crit` extensions, which this verifier does not implement.
    case unsupportedCritical
    /// The issuer's key set has not been fetched yet (or never succeeded).
    case noKeys
    /// No key in the issuer's set has the token's `kid`.
    case unknownKeyID
    /// The token has no `kid` and more than one key in the set could have signed it.
    case ambiguousKey
    /// The key the token names cannot make this algorithm's signatures (e.g. an RS256 header on an EC key).
    case keyTypeMismatch(algorithm: JWSAlgorithm, keyType: PublicKey.KeyType)
    /// The signature is not valid for the signing input under the chosen key.
    case badSignature
    /// `iss` is not the configured issuer.
    case wrongIssuer
    /// Neither `aud` nor (when accepted) `azp` names an accepted audience.
    case wrongAudience
    /// `exp` is in the past by more than the leeway.
    case expired
    /// `nbf` is in the future by more than the leeway.
    case notYetValid
    /// `iat` is in the future by more than the leeway.
    case issuedInFuture
    /// A required claim is absent; the name is the configured claim name.
    case missingClaim(String)
    /// A claim has the wrong JSON type; the name is the configured claim name.
    case invalidClaim(String)

    package var description: String {
        switch self {
        case .malformed(let reason): "malformed token: \(reason)"
        case .tooLarge: "token is longer than \(JWS.maximumLength) bytes"
        case .algorithmNone: "token is unsigned (alg none)"
        case .hmacRefused: "HMAC-signed tokens (HS256, HS384, HS512) are never accepted"
        case .algorithmNotAllowed(let name): "algorithm \(name) is not allowed for this issuer"
        case .unsupportedCritical: "token header has critical extensions (crit) that are not supported"
        case .noKeys: "the issuer's signing keys are not available"
        case .unknownKeyID: "token key id (kid) is not in the issuer's key set"
        case .ambiguousKey: "token has no key id (kid) and several of the issuer's keys match its algorithm"
        case .keyTypeMismatch(let algorithm, let keyType):
            "algorithm \(algorithm) does not match the key's type \(keyType)"
        case .badSignature: "signature does not verify with the issuer's key"
        case .wrongIssuer: "issuer (iss) is not the configured issuer"
        case .wrongAudience: "audience (aud/azp) is not an accepted audience"
        case .expired: "token has expired (exp)"
        case .notYetValid: "token is not valid yet (nbf)"
        case .issuedInFuture: "token is issued in the future (iat)"
        case .missingClaim(let name): "token has no \(name) claim"
        case .invalidClaim(let name): "token claim \(name) has the wrong type"
        }
    }

    /// A short stable label for metrics and for tests.
    package var label: String {
        switch self {
        case .malformed: "malformed"
        case .tooLarge: "too_large"
        case .algorithmNone: "alg_none"
        case .hmacRefused: "hmac"
        case .algorithmNotAllowed: "alg_not_allowed"
        case .unsupportedCritical: "crit"
        case .noKeys: "no_keys"
        case .unknownKeyID: "unknown_kid"
        case .ambiguousKey: "ambiguous_key"
        case .keyTypeMismatch: "key_type_mismatch"
        case .badSignature: "bad_signature"
        case .wrongIssuer: "wrong_iss"
        case .wrongAudience: "wrong_aud"
        case .expired: "expired"
        case .notYetValid: "nbf"
        case .issuedInFuture: "iat"
        case .missingClaim: "missing_claim"
        case .invalidClaim: "invalid_claim"
        }
    }
}
