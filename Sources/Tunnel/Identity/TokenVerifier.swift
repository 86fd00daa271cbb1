import Foundation

/// Verifies tokens from one issuer: compact JWS, an allowed asymmetric algorithm, a key from the issuer's set
/// chosen by `kid` whose type fits the algorithm, a valid signature, then the claims (see `validateClaims`).
///
/// A value without I/O or clock: keys and `now` are passed in, so every rule is testable alone.
package struct TokenVerifier: Sendable {
    /// What one issuer's tokens must satisfy and how identities are read from them.
    package struct Configuration: Sendable, Equatable {
        /// `iss`, matched exactly (no trailing-slash or case folding).
        package var issuer: String
        /// Audiences accepted in `aud` (string or array); an empty list accepts no token.
        package var audiences: [String]
        /// Also accept a token whose `azp` is one of `audiences` (ID tokens issued to a gateway's client id).
        package var acceptsAuthorizedParty: Bool
        /// Algorithms accepted; HMAC and `none` cannot be listed.
        package var algorithms: Set<JWSAlgorithm>
        /// Tolerated clock skew for `exp`, `nbf` and `iat`, in seconds.
        package var leeway: TimeInterval
        /// The claim (or dotted path) that names the user: `email`, `preferred_username`, `sub`, …
        package var usernameClaim: String
        /// The claim (or dotted path, e.g. `realm_access.roles`) with the groups; nil reads no groups.
        package var groupsClaim: String?
        /// Prepended to every group, to keep IdP groups apart from cluster groups.
        package var groupPrefix: String

        /// A configuration with the defaults: RS256, ES256 and EdDSA, 60 s leeway, `email`, `groups`, no prefix.
        package init(
            issuer: String, audiences: [String], acceptsAuthorizedParty: Bool = false,
            algorithms: Set<JWSAlgorithm> = JWSAlgorithm.defaultAllowed, leeway: TimeInterval = 60,
            usernameClaim: String = "email", groupsClaim: String? = "groups", groupPrefix: String = ""
        ) {
            self.issuer = issuer
            self.audiences = audiences
            self.acceptsAuthorizedParty = acceptsAuthorizedParty
            self.algorithms = algorithms
            self.leeway = leeway
            self.usernameClaim = usernameClaim
            self.groupsClaim = groupsClaim
            self.groupPrefix = groupPrefix
        }
    }

    /// The rules this verifier applies.
    package let configuration: Configuration

    /// A verifier for `configuration`.
    package init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The identity `token` proves at `now`, verified with `keys`; or the reason it is refused. An `unknownKeyID`
    /// refusal is the caller's cue to ask its `JWKSCache` whether to refetch the keys and try once more.
    package func verify(_ token: String, keys: JWKSet?, now: Date) throws(TokenRefusal) -> VerifiedIdentity {
        try self.verify(try JWS(compact: token), keys: keys, now: now)
    }

    /// `verify(_:keys:now:)` for a token already parsed, e.g. to look up `jws.keyID` in a `JWKSCache` first.
    package func verify(_ jws: JWS, keys: JWKSet?, now: Date) throws(TokenRefusal) -> VerifiedIdentity {
        let (algorithm, key) = try self.verifySignature(of: jws, keys: keys)
        let claims = try JWTClaims(json: jws.payload)
        return try self.validateClaims(
            claims, now: now, tokenDigest: jws.digest, algorithm: algorithm, keyID: key.keyID)
    }

    /// Checks the algorithm against the allow-list, picks the key and verifies the signature; returns the algorithm
    /// and the key that verified it.
    package func verifySignature(of jws: JWS, keys: JWKSet?) throws(TokenRefusal) -> (JWSAlgorithm, JWK) {
        let algorithm = try jws.algorithm(allowed: self.configuration.algorithms)
        guard let keys else { throw .noKeys }
        for candidate in try keys.candidates(keyID: jws.keyID, algorithm: algorithm)
        where candidate.key.isValidSignature(jws.signature, over: jws.signingInput, algorithm: algorithm) {
            return (algorithm, candidate)
        }
        throw .badSignature
    }
}
