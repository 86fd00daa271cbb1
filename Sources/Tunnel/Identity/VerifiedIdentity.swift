import Foundation

/// Who a verified token says the caller is. It keeps no token material: the token is known only by its digest.
package struct VerifiedIdentity: Sendable, Equatable {
    /// `iss`, equal to the configured issuer.
    package var issuer: String
    /// `sub`.
    package var subject: String
    /// The configured username claim's value.
    package var username: String
    /// Groups from the configured groups claim, each with the configured prefix.
    package var groups: [String]
    /// The configured audience the token was accepted for (through `aud` or `azp`).
    package var audience: String
    /// `exp`: the identity must not be used from this instant on.
    package var expiresAt: Date
    /// `iat`, when present.
    package var issuedAt: Date?
    /// `jti`, when present: the issuer's id for the token, for audit.
    package var tokenID: String?
    /// SHA-256 of the token, for caching and correlation.
    package var tokenDigest: TokenDigest
    /// The algorithm that signed it.
    package var algorithm: JWSAlgorithm
    /// The `kid` of the key that verified it, when the token named one.
    package var keyID: String?

    /// An identity with every field given.
    package init(
        issuer: String, subject: String, username: String, groups: [String], audience: String, expiresAt: Date,
        issuedAt: Date?, tokenID: String?, tokenDigest: TokenDigest, algorithm: JWSAlgorithm, keyID: String?
    ) {
        self.issuer = issuer
        self.subject = subject
        self.username = username
        self.groups = groups
        self.audience = audience
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.tokenID = tokenID
        self.tokenDigest = tokenDigest
        self.algorithm = algorithm
        self.keyID = keyID
    }
}
