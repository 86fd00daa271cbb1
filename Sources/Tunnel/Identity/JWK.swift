/// Why one JWK was not turned into a verification key; the reason names no key material.
package enum JWKError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `kty` (or `crv`) is one this code does not verify with, e.g. `oct`, `EC` P-384, `OKP` X25519.
    case unsupportedKeyType(String)
    /// `use` is not `sig`, or `key_ops` does not include `verify`.
    case notForSignatures
    /// A member is missing or badly encoded.
    case malformed(String)
    /// An RSA modulus below 2048 or above 8192 bits.
    case weakOrOversizedKey
    /// OpenSSL refused the key (e.g. a point off the curve).
    case openSSL(OpenSSLError)

    package var description: String {
        switch self {
        case .unsupportedKeyType(let type): "unsupported key type \(type)"
        case .notForSignatures: "key is not for signatures (use/key_ops)"
        case .malformed(let reason): "malformed key: \(reason)"
        case .weakOrOversizedKey:
            "RSA key is outside \(PublicKey.minimumRSABits) to \(PublicKey.maximumRSABits) bits"
        case .openSSL(let error): "key refused: \(error)"
        }
    }
}

/// One JSON Web Key (RFC 7517) that can verify signatures: its id, its optional algorithm and the public key.
package struct JWK: Sendable {
    /// `kid`, if the key has one.
    package let keyID: String?
    /// `alg`, when the JWK pins one: the key is then used only for that algorithm. A JWK pinning an algorithm this
    /// code does not verify is refused as unsupported.
    package let algorithm: JWSAlgorithm?
    /// The key itself.
    package let key: PublicKey

    /// A key with every field given (tests and callers holding a key already).
    package init(keyID: String?, algorithm: JWSAlgorithm?, key: PublicKey) {
        self.keyID = keyID
        self.algorithm = algorithm
        self.key = key
    }

    /// Builds the key from one parsed JWK object. Private members (`d`, `p`, …) and certificates (`x5c`) are
    /// ignored: only the public parameters are read.
    package init(json: JSONValue) throws(JWKError) {
        guard let members = json.object else { throw .malformed("not a JSON object") }
        guard let keyType = members["kty"]?.string else { throw .malformed("no string kty") }
        if let use = members["use"] {
            guard use.string == "sig" else { throw .notForSignatures }
        }
        if let operations = members["key_ops"] {
            guard operations.array?.contains(.string("verify")) == true else { throw .notForSignatures }
        }
        let keyID = members["kid"]
        guard keyID == nil || keyID?.string != nil else { throw .malformed("kid is not a string") }
        var algorithm: JWSAlgorithm?
        if let name = members["alg"] {
            guard let text = name.string else { throw .malformed("alg is not a string") }
            guard let known = JWSAlgorithm(rawValue: text) else {
                throw .unsupportedKeyType("for algorithm \(JWSAlgorithm.registeredNames.contains(text) ? text : "?")")
            }
            algorithm = known
        }
        let key: PublicKey
        switch keyType {
        case "RSA":
            key = try PublicKey.rsa(
                modulus: try Self.bytes(members, "n"), exponent: try Self.bytes(members, "e"))
        case "EC":
            guard members["crv"]?.string == "P-256" else { throw .unsupportedKeyType("EC curve") }
            key = try PublicKey.p256(x: try Self.bytes(members, "x"), y: try Self.bytes(members, "y"))
        case "OKP":
            guard members["crv"]?.string == "Ed25519" else { throw .unsupportedKeyType("OKP curve") }
            key = try PublicKey.ed25519(x: try Self.bytes(members, "x"))
        default:
            throw .unsupportedKeyType(["oct", "RSA", "EC", "OKP"].contains(keyType) ? keyType : "?")
        }
        if let algorithm, algorithm.keyType != key.type {
            throw .malformed("alg \(algorithm) does not fit key type \(key.type)")
        }
        self.init(keyID: keyID?.string, algorithm: algorithm, key: key)
    }

    /// Whether this key may verify a signature made with `algorithm`.
    func fits(_ algorithm: JWSAlgorithm) -> Bool {
        self.key.type == algorithm.keyType && (self.algorithm == nil || self.algorithm == algorithm)
    }

    private static func bytes(_ members: [String: JSONValue], _ name: String) throws(JWKError) -> [UInt8] {
        guard let text = members[name]?.string, let bytes = Base64URL.decode(text) else {
            throw .malformed("\(name) is missing or not base64url")
        }
        return bytes
    }
}
