import Foundation
import Testing

@testable import Tunnel

/// Published vectors (independent implementations) and every signature-level refusal, with tokens signed here.
@Suite struct JOSETests {
    typealias T = JOSETestTokens

    static let rsa = JOSETestKey.rsa(bits: 2048)
    static let otherRSA = JOSETestKey.rsa(bits: 2048)
    static let ec = JOSETestKey.p256()
    static let ed = JOSETestKey.ed25519()
    static let keys = T.keySet([
        Self.rsa.jwk(["kid": "rsa", "use": "sig"]), Self.ec.jwk(["kid": "ec"]),
        Self.ed.jwk(["kid": "ed", "alg": "EdDSA"]),
    ])
    static let verifier = TokenVerifier(configuration: .init(issuer: T.issuer, audiences: ["porthole"]))

    static func refusal(_ token: String, keys: JWKSet? = Self.keys, verifier: TokenVerifier = Self.verifier)
        -> TokenRefusal?
    {
        do {
            _ = try verifier.verify(token, keys: keys, now: T.now)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Published vectors

    static let rfcPayload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
        + "LmNvbS9pc19yb290Ijp0cnVlfQ"
    static let rfcVerifier = TokenVerifier(configuration: .init(issuer: "joe", audiences: ["x"]))

    @Test func rfc7515AppendixA2RS256() throws {
        let token = "eyJhbGciOiJSUzI1NiJ9.\(Self.rfcPayload)."
            + "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
            + "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
            + "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLI"
            + "ARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w"
            + "9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
        let keys = T.keySet([[
            "kty": "RSA", "e": "AQAB",
            "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT"
                + "-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYU"
                + "sLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
                + "DWNmoudF8NAco9_h9iaGNj8q2eth"
                + "FkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
        ]])
        let jws = try JWS(compact: token)
        let (algorithm, _) = try Self.rfcVerifier.verifySignature(of: jws, keys: keys)
        #expect(algorithm == .rs256)
        let claims = try JWTClaims(json: jws.payload)
        #expect(claims["iss"] == .string("joe") && claims["exp"] == .number(1_300_819_380))
        #expect(claims["http://example.com/is_root"] == .bool(true))
        var tampered = Array(token.utf8)
        tampered[30] = tampered[30] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: TokenRefusal.badSignature) {
            try Self.rfcVerifier.verifySignature(of: try JWS(compact: tampered), keys: keys)
        }
    }

    @Test func rfc7515AppendixA3ES256() throws {
        let token = "eyJhbGciOiJFUzI1NiJ9.\(Self.rfcPayload)."
            + "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
        let keys = T.keySet([[
            "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        ]])
        let (algorithm, _) = try Self.rfcVerifier.verifySignature(of: try JWS(compact: token), keys: keys)
        #expect(algorithm == .es256)
        // The same signature with one bit of s changed.
        let flipped = token.replacingOccurrences(of: "Kg6NU1Q", with: "Kg6NV1Q")
        #expect(throws: TokenRefusal.badSignature) {
            try Self.rfcVerifier.verifySignature(of: try JWS(compact: flipped), keys: keys)
        }
    }

    @Test func rfc8037AppendixA4EdDSA() throws {
        let token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
            + "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        let keys = T.keySet([["kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"]])
        let jws = try JWS(compact: token)
        #expect(String(decoding: jws.payload, as: UTF8.self) == "Example of Ed25519 signing")
        let (algorithm, _) = try Self.rfcVerifier.verifySignature(of: jws, keys: keys)
        #expect(algorithm == .edDSA)
        #expect(throws: TokenRefusal.badSignature) {
            try Self.rfcVerifier.verifySignature(
                of: try JWS(compact: token.replacingOccurrences(of: "RXhh", with: "RXhi")), keys: keys)
        }
    }

    @Test func rfc7515AppendixA1HS256IsRefused() {
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\(Self.rfcPayload)."
            + "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(Self.refusal(token) == .hmacRefused)
    }

    // MARK: Accepted tokens

    @Test(arguments: [("RS256", "rsa"), ("ES256", "ec"), ("EdDSA", "ed")])
    func acceptsEachAlgorithm(algorithm: String, keyID: String) throws {
        let key = ["rsa": Self.rsa, "ec": Self.ec, "ed": Self.ed][keyID]!
        let token = T.token(header: ["alg": algorithm, "kid": keyID, "typ": "JWT"], key: key)
        let identity = try Self.verifier.verify(token, keys: Self.keys, now: T.now)
        #expect(identity.algorithm.rawValue == algorithm && identity.keyID == keyID)
        #expect(identity.issuer == T.issuer && identity.subject == "f3a9c1" && identity.username == "alice@example.com")
        #expect(identity.groups == ["dev", "oncall"] && identity.audience == "porthole" && identity.tokenID == "id-1")
        #expect(identity.expiresAt == T.now.addingTimeInterval(300))
        #expect(identity.tokenDigest == TokenDigest(of: token))
    }

    @Test func manyES256SignaturesVerify() throws {
        for index in 0..<40 {  // r or s with leading zero bytes must survive the raw-to-DER conversion
            let token = T.token(
                header: ["alg": "ES256", "kid": "ec"], claims: T.claims(["jti": "\(index)"]), key: Self.ec)
            _ = try Self.verifier.verify(token, keys: Self.keys, now: T.now)
        }
    }

    @Test func tokenWithoutKeyIDUsesTheOnlyFittingKey() throws {
        let token = T.token(header: ["alg": "EdDSA"], key: Self.ed)
        #expect(try Self.verifier.verify(token, keys: Self.keys, now: T.now).keyID == "ed")
        let twoRSA = T.keySet([Self.rsa.jwk(["kid": "a"]), Self.otherRSA.jwk(["kid": "b"])])
        #expect(Self.refusal(T.token(header: ["alg": "RS256"], key: Self.rsa), keys: twoRSA) == .ambiguousKey)
    }

    @Test func duplicateKeyIDsAreAllTried() throws {
        let keys = T.keySet([
            Self.otherRSA.jwk(["kid": "same"]), Self.rsa.jwk(["kid": "same"]), Self.ec.jwk(["kid": "same"]),
        ])
        let token = T.token(header: ["alg": "RS256", "kid": "same"], key: Self.rsa)
        #expect(try Self.verifier.verify(token, keys: keys, now: T.now).username == "alice@example.com")
        let es = T.token(header: ["alg": "ES256", "kid": "same"], key: Self.ec)
        #expect(try Self.verifier.verify(es, keys: keys, now: T.now).algorithm == .es256)
    }

    // MARK: Refusals

    @Test func refusesAlgorithmNone() {
        for name in ["none", "None", "NONE"] {
            #expect(Self.refusal(T.token(header: ["alg": name, "kid": "rsa"], key: nil)) == .algorithmNone)
        }
        // Even with a signature attached.
        let signed = T.token(header: ["alg": "none", "kid": "rsa"], key: nil, signature: [1, 2, 3])
        #expect(Self.refusal(signed) == .algorithmNone)
    }

    @Test func refusesHMACKeyedWithThePublicKey() {
        for secret in [Array(Self.rsa.publicKeyPEM.utf8), Base64URL.decode(Self.rsa.publicMembers["n"]!)!] {
            for algorithm in ["HS256", "HS384", "HS512", "hs256"] {
                let unsigned = T.token(header: ["alg": algorithm, "kid": "rsa"], key: nil)
                let signingInput = Array(unsigned.utf8.dropLast())
                let token = T.token(
                    header: ["alg": algorithm, "kid": "rsa"], key: nil,
                    signature: JOSETestKey.hmacSHA256(signingInput, secret: secret))
                #expect(Self.refusal(token) == .hmacRefused)
            }
        }
    }

    @Test func refusesAlgorithmKeyTypeMismatch() {
        // RS256 header naming the EC key (signed with an RSA key, as an attacker would).
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "ec"], key: Self.rsa))
            == .keyTypeMismatch(algorithm: .rs256, keyType: .ecP256))
        #expect(Self.refusal(T.token(header: ["alg": "ES256", "kid": "rsa"], key: Self.ec))
            == .keyTypeMismatch(algorithm: .es256, keyType: .rsa))
        #expect(Self.refusal(T.token(header: ["alg": "EdDSA", "kid": "ec"], key: Self.ed))
            == .keyTypeMismatch(algorithm: .edDSA, keyType: .ecP256))
        // A JWK that pins its algorithm is not used for another one of the same key type.
        let pinned = T.keySet([Self.ec.jwk(["kid": "ec", "alg": "ES256"])])
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "ec"], key: Self.rsa), keys: pinned)
            == .keyTypeMismatch(algorithm: .rs256, keyType: .ecP256))
    }

    @Test func refusesAlgorithmsOffTheAllowList() {
        let onlyES = TokenVerifier(
            configuration: .init(issuer: T.issuer, audiences: ["porthole"], algorithms: [.es256]))
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "rsa"], key: Self.rsa), verifier: onlyES)
            == .algorithmNotAllowed("RS256"))
        #expect(Self.refusal(T.token(header: ["alg": "PS256", "kid": "rsa"], key: nil, signature: [0]))
            == .algorithmNotAllowed("PS256"))
        let strange = Self.refusal(T.token(header: ["alg": "<secret-ish>", "kid": "rsa"], key: nil, signature: [0]))
        #expect(strange == .algorithmNotAllowed("unrecognized"))
    }

    @Test func refusesUnknownKeyIDAndMissingKeys() {
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "rotated-away"], key: Self.rsa)) == .unknownKeyID)
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "rsa"], key: Self.rsa), keys: nil) == .noKeys)
    }

    @Test func refusesSignaturesFromAnotherKeyOrOfTheWrongShape() {
        #expect(Self.refusal(T.token(header: ["alg": "RS256", "kid": "rsa"], key: Self.otherRSA)) == .badSignature)
        #expect(Self.refusal(T.token(header: ["alg": "ES256", "kid": "ec"], key: JOSETestKey.p256())) == .badSignature)
        #expect(Self.refusal(T.token(header: ["alg": "EdDSA", "kid": "ed"], key: JOSETestKey.ed25519()))
            == .badSignature)
        let claims = T.claims()
        let good = Array(T.token(header: ["alg": "ES256", "kid": "ec"], claims: claims, key: Self.ec).utf8)
        let raw = Base64URL.decode(good.split(separator: UInt8(ascii: ".")).last!)!
        // The DER form OpenSSL produces, a 65-byte and a 63-byte signature, and nothing at all: all refused.
        let der = PublicKey.derECDSASignature(fromRaw: raw)!
        for signature in [der, raw + [0], Array(raw.dropFirst()), []] {
            let token = T.token(header: ["alg": "ES256", "kid": "ec"], claims: claims, key: nil, signature: signature)
            #expect(Self.refusal(token) == .badSignature)
        }
        let rs = Array(T.token(header: ["alg": "RS256", "kid": "rsa"], claims: claims, key: Self.rsa).utf8)
        let rsSignature = Base64URL.decode(rs.split(separator: UInt8(ascii: ".")).last!)!
        let short = T.token(header: ["alg": "RS256", "kid": "rsa"], claims: claims, key: nil,
                            signature: Array(rsSignature.dropFirst()))
        #expect(Self.refusal(short) == .badSignature)
        // Claims changed after signing.
        var tampered = T.token(header: ["alg": "RS256", "kid": "rsa"], key: Self.rsa)
            .split(separator: ".").map(String.init)
        tampered[1] = Base64URL.encode(T.json(T.claims(["email": "mallory@example.com"])))
        #expect(Self.refusal(tampered.joined(separator: ".")) == .badSignature)
    }

    @Test func refusesCriticalExtensions() {
        let token = T.token(header: ["alg": "RS256", "kid": "rsa", "crit": ["exp"], "exp": 1], key: Self.rsa)
        #expect(Self.refusal(token) == .unsupportedCritical)
        let unencoded = T.token(header: ["alg": "RS256", "kid": "rsa", "crit": ["b64"], "b64": false], key: Self.rsa)
        #expect(Self.refusal(unencoded) == .unsupportedCritical)
    }

    @Test func refusesMalformedTokens() {
        let good = T.token(header: ["alg": "RS256", "kid": "rsa"], key: Self.rsa)
        let parts = good.split(separator: ".").map(String.init)
        let cases: [String] = [
            "", "abc", parts[0] + "." + parts[1], good + ".x", good + "=", parts[0] + "=." + parts[1] + "." + parts[2],
            " " + good, good + "\n",
            parts[0] + "." + parts[1] + "." + parts[2].replacingOccurrences(of: "-", with: "+"),
            "." + parts[1] + "." + parts[2],
            Base64URL.encode(Array("not json".utf8)) + "." + parts[1] + "." + parts[2],
            Base64URL.encode(Array("[\"RS256\"]".utf8)) + "." + parts[1] + "." + parts[2],
            T.token(header: ["kid": "rsa"], key: nil, signature: [0]),
            T.token(header: ["alg": 256, "kid": "rsa"], key: nil, signature: [0]),
            T.token(header: ["alg": "RS256", "kid": 7], key: nil, signature: [0]),
            T.token(header: ["alg": "RS256", "typ": ["JWT"]], key: nil, signature: [0]),
        ]
        for token in cases {
            guard case .malformed? = Self.refusal(token) else {
                Issue.record("not refused as malformed: \(token.prefix(40))")
                continue
            }
        }
        // Correctly signed, but the payload is not a claims object.
        let signingInput = Base64URL.encode(T.json(["alg": "RS256", "kid": "rsa"])) + "."
            + Base64URL.encode(Array("[1]".utf8))
        let signed = signingInput + "." + Base64URL.encode(Self.rsa.sign(Array(signingInput.utf8), algorithm: "RS256"))
        #expect(Self.refusal(signed) == .malformed("claims are not a JSON object"))
    }

    @Test func refusesOversizedTokensBeforeParsing() {
        let padding = String(repeating: "a", count: 16 * 1024)
        let token = T.token(header: ["alg": "RS256", "kid": "rsa"], claims: T.claims(["pad": padding]), key: Self.rsa)
        #expect(Self.refusal(token) == .tooLarge)
        #expect(throws: TokenRefusal.tooLarge) {
            try JWS(compact: [UInt8](repeating: 0x2E, count: JWS.maximumLength + 1))
        }
    }

    /// Every refusal reason is free of token material: no claim, kid or header value shows up in it.
    @Test func refusalReasonsCarryNoTokenMaterial() {
        let marker = "Zq7marker"
        let claims = T.claims(["sub": marker, "email": marker, "jti": marker, "aud": marker, "iss": marker])
        let tokens = [
            T.token(header: ["alg": "RS256", "kid": marker], claims: claims, key: Self.rsa),
            T.token(header: ["alg": "RS256", "kid": "rsa", "x": marker], claims: claims, key: Self.rsa),
            T.token(header: ["alg": marker, "kid": "rsa"], claims: claims, key: Self.rsa),
            T.token(header: ["alg": "HS256", "kid": marker], claims: claims, key: nil, signature: [1]),
            T.token(header: ["alg": "RS256", "kid": "rsa", "crit": [marker]], claims: claims, key: Self.rsa),
            T.token(header: ["alg": "RS256", "kid": "rsa"], claims: claims, key: Self.otherRSA),
            T.token(header: ["alg": "RS256", "kid": "rsa"], claims: claims, key: Self.rsa),
            T.token(header: ["alg": "RS256", "kid": "rsa"], claims: T.claims(["exp": marker]), key: Self.rsa),
            T.token(header: ["alg": "RS256", "kid": "rsa"], claims: T.claims(["aud": marker]), key: Self.rsa),
        ]
        for token in tokens {
            guard let refusal = Self.refusal(token) else {
                Issue.record("accepted")
                continue
            }
            #expect(!refusal.description.contains(marker) && !refusal.label.contains(marker))
            for part in token.split(separator: ".") where part.count > 8 {
                #expect(!refusal.description.contains(part))
            }
        }
    }

    // MARK: Base64url

    @Test func base64URLIsStrict() {
        for length in 0..<12 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.encode(Array("\u{FB}\u{FF}".utf8)) == "w7vDvw")
        #expect(Base64URL.decode("QQ") == [0x41])
        for bad in ["QR", "QQ==", "Q", "QUJD=", "a+b/", "ab cd", "ab\ncd", "é"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
    }
}
