import Foundation

/// One entry for libFuzzer targets (and the unit tests' randomized runs): feeds untrusted bytes to every JOSE
/// parser — the token, its claims, the verifier, and the same bytes as a JWK Set. It must never crash.
package enum JOSEFuzzEntry {
    private static let verifier = TokenVerifier(
        configuration: .init(
            issuer: "https://issuer.example", audiences: ["porthole"], acceptsAuthorizedParty: true,
            groupsClaim: "realm_access.roles", groupPrefix: "oidc:"))

    /// An Ed25519 key (RFC 8037 appendix A) and a P-256 key (RFC 7515 appendix A.3), so signatures are checked.
    private static let keys: JWKSet? = try? JWKSet(json: Array(#"""
        {"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}
        """#.utf8))

    /// Parses `bytes` every way an attacker could make the controller parse them; results are discarded.
    package static func parseUntrusted(_ bytes: [UInt8]) {
        if let jws = try? JWS(compact: bytes) {
            _ = try? jws.algorithm(allowed: JWSAlgorithm.defaultAllowed)
            if let claims = try? JWTClaims(json: jws.payload) {
                _ = try? Self.verifier.validateClaims(
                    claims, now: Date(timeIntervalSince1970: 1_800_000_000), tokenDigest: jws.digest,
                    algorithm: .edDSA, keyID: jws.keyID)
            }
            _ = try? Self.verifier.verifySignature(of: jws, keys: Self.keys)
        }
        _ = try? JWKSet(json: bytes)
    }
}
