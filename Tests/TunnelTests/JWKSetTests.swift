import Foundation
import Testing

@testable import Tunnel

/// JWK and JWK Set parsing: which keys are kept, which are skipped and why, and which documents are refused.
@Suite struct JWKSetTests {
    typealias T = JOSETestTokens

    static let rsa = JOSETestKey.rsa(bits: 2048)
    static let ec = JOSETestKey.p256()
    static let ed = JOSETestKey.ed25519()

    static func parse(_ keys: [Any]) throws(JWKSetError) -> JWKSet {
        try JWKSet(json: T.json(["keys": keys]))
    }

    @Test func keepsUsableKeysAndSkipsTheRest() throws {
        let weak = JOSETestKey.rsa(bits: 1024)
        var offCurve = Self.ec.jwk(["kid": "off-curve"])
        var y = Base64URL.decode(Self.ec.publicMembers["y"]!)!
        y[31] ^= 1
        offCurve["y"] = Base64URL.encode(y)
        let set = try Self.parse([
            Self.rsa.jwk(["kid": "rsa", "use": "sig", "alg": "RS256"]),
            Self.ec.jwk(["kid": "ec-enc", "use": "enc"]),
            ["kty": "oct", "kid": "hmac", "k": "c2VjcmV0"],
            ["kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"],
            ["kty": "OKP", "crv": "X25519", "kid": "x25519", "x": Self.ed.publicMembers["x"]!],
            weak.jwk(["kid": "weak"]),
            offCurve,
            Self.ec.jwk(["kid": "ops", "key_ops": ["encrypt"]]),
            Self.rsa.jwk(["kid": "hs", "alg": "HS256"]),
            Self.ec.jwk(["kid": "mismatch", "alg": "RS256"]),
            ["kty": "RSA", "kid": "no-n", "e": "AQAB"],
            Self.ec.jwk(["kid": "ec", "key_ops": ["verify"], "x5c": ["MIIB"], "d": "ignored"]),
            Self.ed.jwk(["kid": "ed"]),
            "not an object",
        ])
        #expect(set.keys.map(\.keyID) == ["rsa", "ec", "ed"])
        #expect(set.keys.map(\.key.type) == [PublicKey.KeyType.rsa, .ecP256, .ed25519])
        #expect(set.keys[0].algorithm == JWSAlgorithm.rs256 && set.keys[1].algorithm == nil)
        #expect(set.skipped.count == 11)
        #expect(set.skipped[0] == "key 1: key is not for signatures (use/key_ops)")
        #expect(set.skipped[1] == "key 2: unsupported key type oct")
        #expect(set.skipped[4].hasPrefix("key 5: RSA key is outside 2048"))
        #expect(set.skipped[5].hasPrefix("key 6: key refused: "))
        for reason in set.skipped {  // no key material in the log line
            #expect(!reason.contains(Self.ec.publicMembers["x"]!) && !reason.contains("c2VjcmV0"))
        }
    }

    @Test func rsaModulusWithLeadingZeroAndOddModulusChecks() throws {
        var members = Self.rsa.jwk(["kid": "z"])
        members["n"] = Base64URL.encode([0] + Base64URL.decode(Self.rsa.publicMembers["n"]!)!)
        #expect(try Self.parse([members]).keys.count == 1)
        var even = Base64URL.decode(Self.rsa.publicMembers["n"]!)!
        even[even.count - 1] &= 0xFE
        #expect(throws: JWKSetError.self) { try Self.parse([Self.rsa.jwk(["n": Base64URL.encode(even)])]) }
        #expect(throws: JWKSetError.self) { try Self.parse([Self.rsa.jwk(["e": "AQ"])]) }  // e = 1
        #expect(throws: JWKSetError.self) { try Self.parse([Self.rsa.jwk(["e": "AAAC"])]) }  // e = 2
        #expect(throws: JWKSetError.self) {
            try Self.parse([["kty": "RSA", "n": Base64URL.encode([UInt8](repeating: 0xFF, count: 1025)), "e": "AQAB"]])
        }
    }

    @Test func coordinatesMustBeFullLength() {
        var short = Self.ec.jwk()
        short["x"] = Base64URL.encode(Base64URL.decode(Self.ec.publicMembers["x"]!)!.dropFirst())
        #expect(throws: JWKSetError.self) { try Self.parse([short]) }
        #expect(throws: JWKSetError.self) { try Self.parse([["kty": "OKP", "crv": "Ed25519", "x": "AAAA"]]) }
        var padded = Self.ed.jwk()
        padded["x"] = Self.ed.publicMembers["x"]! + "="
        #expect(throws: JWKSetError.self) { try Self.parse([padded]) }
    }

    @Test func refusesWholeDocuments() {
        #expect(throws: JWKSetError.malformed("not JSON")) { try JWKSet(json: Array("{".utf8)) }
        #expect(throws: JWKSetError.malformed("no keys array")) { try JWKSet(json: Array("[]".utf8)) }
        #expect(throws: JWKSetError.malformed("no keys array")) { try JWKSet(json: Array(#"{"keys":{}}"#.utf8)) }
        #expect(throws: JWKSetError.noUsableKeys(skipped: [])) { try JWKSet(json: Array(#"{"keys":[]}"#.utf8)) }
        #expect(throws: JWKSetError.noUsableKeys(skipped: ["key 0: unsupported key type oct"])) {
            try Self.parse([["kty": "oct", "k": "AA"]])
        }
        #expect(throws: JWKSetError.tooManyKeys) {
            try Self.parse(Array(repeating: Self.ed.jwk(), count: JWKSet.maximumKeys + 1))
        }
        #expect(throws: JWKSetError.tooLarge) {
            try JWKSet(json: [UInt8](repeating: 0x20, count: JWKSet.maximumLength + 1))
        }
    }

    @Test func deeplyNestedJSONDoesNotCrash() {
        let depth = 20_000
        let nested = Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
        _ = JSONValue.parse(Array(#"{"keys":"#.utf8) + nested + Array("}".utf8))
        #expect(throws: JWKSetError.self) {
            try JWKSet(json: Array(#"{"keys":[{"kty":"#.utf8) + nested + Array("}]}".utf8))
        }
        let header = Base64URL.encode(Array(String(repeating: "[", count: 5000).utf8))
        #expect(throws: TokenRefusal.self) { try JWS(compact: header + ".e30.") }
    }

    @Test func candidatesByKeyIDAndAlgorithm() throws {
        let set = try Self.parse([Self.rsa.jwk(["kid": "a"]), Self.ec.jwk(["kid": "a"]), Self.ed.jwk(["kid": "b"])])
        #expect(try set.candidates(keyID: "a", algorithm: .rs256).map(\.key.type) == [.rsa])
        #expect(try set.candidates(keyID: "a", algorithm: .es256).map(\.key.type) == [.ecP256])
        #expect(throws: TokenRefusal.keyTypeMismatch(algorithm: .rs256, keyType: .ed25519)) {
            try set.candidates(keyID: "b", algorithm: .rs256)
        }
        #expect(throws: TokenRefusal.unknownKeyID) { try set.candidates(keyID: "c", algorithm: .rs256) }
        #expect(try set.candidates(keyID: nil, algorithm: .edDSA).map(\.keyID) == ["b"])
        #expect(set.contains(keyID: "a") && !set.contains(keyID: "c"))
    }
}
