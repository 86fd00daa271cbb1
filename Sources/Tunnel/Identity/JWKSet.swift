/// Why a whole JWK Set was refused. Single bad keys are not errors: they are skipped and listed in
/// `JWKSet.skipped`.
package enum JWKSetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The document is longer than `JWKSet.maximumLength`.
    case tooLarge
    /// Not JSON, or not an object with a `keys` array.
    case malformed(String)
    /// More than `JWKSet.maximumKeys` keys.
    case tooManyKeys
    /// No key in the set can verify signatures; each skipped key's reason is kept.
    case noUsableKeys(skipped: [String])

    package var description: String {
        switch self {
        case .tooLarge: "key set is longer than \(JWKSet.maximumLength) bytes"
        case .malformed(let reason): "malformed key set: \(reason)"
        case .tooManyKeys: "key set has more than \(JWKSet.maximumKeys) keys"
        case .noUsableKeys(let skipped):
            "key set has no usable signing key" + (skipped.isEmpty ? "" : " (\(skipped.joined(separator: "; ")))")
        }
    }
}

/// A JWK Set (RFC 7517 section 5) reduced to the keys that can verify signatures here.
///
/// Keys for encryption (`use` other than `sig`), of unsupported types (`oct`, other curves) or malformed are
/// skipped, and the rest of the set is kept. Several keys may share a `kid` (RFC 7517 allows it when their types
/// differ, and IdPs in rotation sometimes publish both): all of them are candidates.
package struct JWKSet: Sendable {
    /// The longest key set document accepted, in bytes.
    package static let maximumLength = 512 * 1024
    /// The most keys a set may have; each costs a parse and bounds the keys tried for one token.
    package static let maximumKeys = 100

    /// The usable keys, in document order.
    package let keys: [JWK]
    /// One reason per key that was skipped, for the log: its position and why (no key material).
    package let skipped: [String]

    /// A set of already built keys.
    package init(keys: [JWK]) {
        self.keys = keys
        self.skipped = []
    }

    /// Parses a JWK Set document; throws unless it holds at least one usable key.
    package init(json bytes: [UInt8]) throws(JWKSetError) {
        guard bytes.count <= Self.maximumLength else { throw .tooLarge }
        guard let document = JSONValue.parse(bytes) else { throw .malformed("not JSON") }
        guard let entries = document.object?["keys"]?.array else { throw .malformed("no keys array") }
        guard entries.count <= Self.maximumKeys else { throw .tooManyKeys }
        var keys: [JWK] = []
        var skipped: [String] = []
        for (index, entry) in entries.enumerated() {
            do {
                keys.append(try JWK(json: entry))
            } catch {
                skipped.append("key \(index): \(error)")
            }
        }
        guard !keys.isEmpty else { throw .noUsableKeys(skipped: skipped) }
        self.keys = keys
        self.skipped = skipped
    }

    /// Whether some key has this `kid`.
    package func contains(keyID: String) -> Bool {
        self.keys.contains { $0.keyID == keyID }
    }

    /// The keys that may have signed a token with this `kid` and algorithm, or the refusal: `unknownKeyID` when no
    /// key has the kid, `keyTypeMismatch` when keys have it but none fits the algorithm, `ambiguousKey` when the
    /// token has no kid and more than one key fits.
    package func candidates(keyID: String?, algorithm: JWSAlgorithm) throws(TokenRefusal) -> [JWK] {
        guard let keyID else {
            let fitting = self.keys.filter { $0.fits(algorithm) }
            guard let first = fitting.first else {
                guard let any = self.keys.first else { throw .noKeys }
                throw .keyTypeMismatch(algorithm: algorithm, keyType: any.key.type)
            }
            guard fitting.count == 1 else { throw .ambiguousKey }
            return [first]
        }
        let named = self.keys.filter { $0.keyID == keyID }
        guard let first = named.first else { throw .unknownKeyID }
        let fitting = named.filter { $0.fits(algorithm) }
        guard !fitting.isEmpty else { throw .keyTypeMismatch(algorithm: algorithm, keyType: first.key.type) }
        return fitting
    }
}
