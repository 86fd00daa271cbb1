/// A JWS signature algorithm this code verifies (RFC 7518, RFC 8037). HMAC and `none` have no case on purpose:
/// an allow-list of this type cannot hold them, whatever a configuration file says.
package enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    case rs256 = "RS256"
    /// ECDSA on P-256 with SHA-256, signature as raw r || s.
    case es256 = "ES256"
    /// Ed25519 (RFC 8037).
    case edDSA = "EdDSA"

    /// The allow-list when a configuration names none.
    package static let defaultAllowed: Set<JWSAlgorithm> = [.rs256, .es256, .edDSA]

    /// The JOSE name, e.g. `RS256`.
    package var description: String { self.rawValue }

    /// The key type a signature of this algorithm needs.
    var keyType: PublicKey.KeyType {
        switch self {
        case .rs256: .rsa
        case .es256: .ecP256
        case .edDSA: .ed25519
        }
    }

    /// Every `alg` name registered for JWS (RFC 7518 section 3.1, RFC 8037, RFC 8812): the only header values a
    /// refusal repeats, so an audit line never carries arbitrary token text.
    static let registeredNames: Set<String> = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
        "none", "EdDSA", "ES256K",
    ]
}
