import Foundation

extension TokenVerifier {
    /// The identity in verified `claims` at `now`, or why the claims are refused. Pure: same input, same answer.
    ///
    /// Rules: `iss` equals the issuer; `aud` (string or array) contains an accepted audience, or `azp` equals one
    /// when that is accepted; `exp` is required and `now < exp + leeway`; `nbf`, when present, `<= now + leeway`;
    /// `iat`, when present, `<= now + leeway`; `sub` and the username claim are non-empty strings; the groups claim,
    /// when present, is an array of strings or one comma-separated string.
    package func validateClaims(
        _ claims: JWTClaims, now: Date, tokenDigest: TokenDigest, algorithm: JWSAlgorithm, keyID: String?
    ) throws(TokenRefusal) -> VerifiedIdentity {
        let configuration = self.configuration
        let now = now.timeIntervalSince1970
        guard let issuer = claims["iss"] else { throw .missingClaim("iss") }
        guard issuer.string == configuration.issuer else { throw .wrongIssuer }
        let audience = try self.acceptedAudience(claims)
        guard let expiry = claims["exp"] else { throw .missingClaim("exp") }
        guard let expiresAt = expiry.number else { throw .invalidClaim("exp") }
        guard now < expiresAt + configuration.leeway else { throw .expired }
        if let notBefore = claims["nbf"] {
            guard let notBefore = notBefore.number else { throw .invalidClaim("nbf") }
            guard notBefore <= now + configuration.leeway else { throw .notYetValid }
        }
        var issuedAt: Double?
        if let issued = claims["iat"] {
            guard let issued = issued.number else { throw .invalidClaim("iat") }
            guard issued <= now + configuration.leeway else { throw .issuedInFuture }
            issuedAt = issued
        }
        let subject = try Self.requiredString(claims, "sub")
        let username = try Self.requiredString(claims, configuration.usernameClaim)
        var tokenID: String?
        if let identifier = claims["jti"] {
            guard let text = identifier.string else { throw .invalidClaim("jti") }
            tokenID = text
        }
        return VerifiedIdentity(
            issuer: configuration.issuer, subject: subject, username: username,
            groups: try self.groups(claims).map { configuration.groupPrefix + $0 }, audience: audience,
            expiresAt: Date(timeIntervalSince1970: expiresAt),
            issuedAt: issuedAt.map(Date.init(timeIntervalSince1970:)),
            tokenID: tokenID, tokenDigest: tokenDigest, algorithm: algorithm, keyID: keyID)
    }

    /// The configured audience the token is for: through `aud`, else (when accepted) `azp`.
    private func acceptedAudience(_ claims: JWTClaims) throws(TokenRefusal) -> String {
        var audiences: [String] = []
        switch claims["aud"] {
        case .string(let audience)?: audiences = [audience]
        case .array(let elements)?:
            for element in elements {
                guard let audience = element.string else { throw .invalidClaim("aud") }
                audiences.append(audience)
            }
        case nil: break
        case _?: throw .invalidClaim("aud")
        }
        if let match = self.configuration.audiences.first(where: audiences.contains) { return match }
        if self.configuration.acceptsAuthorizedParty, let party = claims["azp"]?.string,
            self.configuration.audiences.contains(party)
        {
            return party
        }
        throw .wrongAudience
    }

    /// Groups as an array of strings, or one string of comma-separated groups; none when the claim is absent.
    private func groups(_ claims: JWTClaims) throws(TokenRefusal) -> [String] {
        guard let name = self.configuration.groupsClaim, let value = claims.value(at: name) else { return [] }
        switch value {
        case .array(let elements):
            var groups: [String] = []
            for element in elements {
                guard let group = element.string else { throw .invalidClaim(name) }
                groups.append(group)
            }
            return groups
        case .string(let joined):
            return joined.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .null:
            return []
        default:
            throw .invalidClaim(name)
        }
    }

    private static func requiredString(_ claims: JWTClaims, _ name: String) throws(TokenRefusal) -> String {
        guard let value = claims.value(at: name) else { throw .missingClaim(name) }
        guard let text = value.string, !text.isEmpty else { throw .invalidClaim(name) }
        return text
    }
}
