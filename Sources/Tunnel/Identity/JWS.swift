/// A compact JWS (RFC 7515 section 7.1), parsed but not verified: its protected header, the payload bytes and the
/// signature. Strict: three canonical base64url parts, a JSON object header with a string `alg`, no `crit`.
///
/// The payload is kept as bytes: claims are parsed only after the signature is verified.
package struct JWS: Sendable {
    /// The longest token accepted, in bytes; ID tokens with many groups stay well below it.
    package static let maximumLength = 16 * 1024

    /// The protected header's `alg`, as written (it may name an algorithm that is refused later).
    package let algorithmName: String
    /// The header's `kid`, if any.
    package let keyID: String?
    /// The header's `typ`, if any (`JWT`, `at+jwt`, …); not enforced here.
    package let type: String?
    /// The decoded payload.
    package let payload: [UInt8]
    /// The decoded signature.
    package let signature: [UInt8]
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    let signingInput: [UInt8]
    /// SHA-256 of the whole compact token: how the token is cached and mentioned once it is no longer kept.
    package let digest: TokenDigest

    /// Parses a compact JWS from its text.
    package init(compact token: String) throws(TokenRefusal) {
        try self.init(compact: Array(token.utf8))
    }

    /// Parses a compact JWS from its bytes.
    package init(compact token: [UInt8]) throws(TokenRefusal) {
        guard token.count <= Self.maximumLength else { throw .tooLarge }
        let dots = token.indices.filter { token[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else { throw .malformed("expected three dot-separated parts") }
        let headerText = token[..<dots[0]]
        let payloadText = token[(dots[0] + 1)..<dots[1]]
        let signatureText = token[(dots[1] + 1)...]
        guard !headerText.isEmpty else { throw .malformed("empty header") }
        guard let headerBytes = Base64URL.decode(headerText) else { throw .malformed("header is not base64url") }
        guard let payload = Base64URL.decode(payloadText) else { throw .malformed("payload is not base64url") }
        guard let signature = Base64URL.decode(signatureText) else {
            throw .malformed("signature is not base64url")
        }
        guard let header = JSONValue.parse(headerBytes)?.object else {
            throw .malformed("header is not a JSON object")
        }
        guard let algorithmName = header["alg"]?.string else { throw .malformed("header has no string alg") }
        if header["crit"] != nil { throw .unsupportedCritical }
        let keyID = header["kid"]
        guard keyID == nil || keyID?.string != nil else { throw .malformed("header kid is not a string") }
        let type = header["typ"]
        guard type == nil || type?.string != nil else { throw .malformed("header typ is not a string") }
        self.algorithmName = algorithmName
        self.keyID = keyID?.string
        self.type = type?.string
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(token[..<dots[1]])
        self.digest = TokenDigest(of: token)
    }

    /// The algorithm if it is one this code verifies and `allowed` lists; otherwise the specific refusal: `none`,
    /// HMAC, or not allowed.
    package func algorithm(allowed: Set<JWSAlgorithm>) throws(TokenRefusal) -> JWSAlgorithm {
        if self.algorithmName.lowercased() == "none" { throw .algorithmNone }
        if self.algorithmName.uppercased().hasPrefix("HS") { throw .hmacRefused }
        guard let algorithm = JWSAlgorithm(rawValue: self.algorithmName), allowed.contains(algorithm) else {
            let name = JWSAlgorithm.registeredNames.contains(self.algorithmName) ? self.algorithmName : "unrecognized"
            throw .algorithmNotAllowed(name)
        }
        return algorithm
    }
}
