import COpenSSL
import Foundation

@testable import Tunnel

/// A private key that signs test tokens with OpenSSL (EVP_DigestSign), independent of the verifier's code paths
/// except for OpenSSL itself, and describes its public half as a JWK.
final class JOSETestKey: @unchecked Sendable {
    let pkey: OpaquePointer  // EVP_PKEY *, owned
    /// The JWK members of the public key (`kty`, `n`/`e`, `crv`/`x`/`y`), without `kid`.
    let publicMembers: [String: String]

    private init(takingOwnershipOf pkey: OpaquePointer, publicMembers: [String: String]) {
        self.pkey = pkey
        self.publicMembers = publicMembers
    }

    deinit {
        EVP_PKEY_free(self.pkey)
    }

    static func rsa(bits: Int32) -> JOSETestKey {
        let pkey = Self.generate(EVP_PKEY_RSA) { context in EVP_PKEY_CTX_set_rsa_keygen_bits(context, bits) }
        return JOSETestKey(
            takingOwnershipOf: pkey,
            publicMembers: ["kty": "RSA", "n": Self.bignumParameter(pkey, "n"), "e": Self.bignumParameter(pkey, "e")])
    }

    static func p256() -> JOSETestKey {
        let key = try! PrivateKey.generateP256()
        EVP_PKEY_up_ref(key.pkey)
        return JOSETestKey(
            takingOwnershipOf: key.pkey,
            publicMembers: [
                "kty": "EC", "crv": "P-256", "x": Self.bignumParameter(key.pkey, "qx", width: 32),
                "y": Self.bignumParameter(key.pkey, "qy", width: 32),
            ])
    }

    static func ed25519() -> JOSETestKey {
        let pkey = Self.generate(EVP_PKEY_ED25519) { _ in 1 }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        precondition(EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1)
        return JOSETestKey(
            takingOwnershipOf: pkey, publicMembers: ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(raw)])
    }

    /// The public key as a JWK object, with `extra` members (`kid`, `use`, `alg`, …).
    func jwk(_ extra: [String: Any] = [:]) -> [String: Any] {
        (self.publicMembers as [String: Any]).merging(extra) { $1 }
    }

    /// The signature JWS `algorithm` wants over `message`: PKCS#1 v1.5 for RS*, raw r || s for ES256, plain
    /// Ed25519 for EdDSA.
    func sign(_ message: [UInt8], algorithm: String) -> [UInt8] {
        let digest: OpaquePointer? = algorithm == "EdDSA" ? nil : EVP_sha256()
        let der = Self.digestSign(message, key: self.pkey, digest: digest)
        guard algorithm == "ES256" else { return der }
        let signature: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
        }
        guard let signature else { preconditionFailure("d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(signature) }
        var raw = [UInt8](repeating: 0, count: 64)
        _ = BN_bn2binpad(ECDSA_SIG_get0_r(signature), &raw, 32)
        raw.withUnsafeMutableBufferPointer { _ = BN_bn2binpad(ECDSA_SIG_get0_s(signature), $0.baseAddress! + 32, 32) }
        return raw
    }

    /// HMAC-SHA-256 with `secret`, through an OpenSSL MAC key.
    static func hmacSHA256(_ message: [UInt8], secret: [UInt8]) -> [UInt8] {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_HMAC, nil, secret, secret.count) else {
            preconditionFailure("EVP_PKEY_new_raw_private_key")
        }
        defer { EVP_PKEY_free(key) }
        return Self.digestSign(message, key: key, digest: EVP_sha256())
    }

    /// The public key as PEM, for HS256-keyed-with-the-public-key attacks.
    var publicKeyPEM: String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        precondition(PEM_write_bio_PUBKEY(bio, self.pkey) == 1)
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    private static func digestSign(_ message: [UInt8], key: OpaquePointer, digest: OpaquePointer?) -> [UInt8] {
        let context = EVP_MD_CTX_new()!  // EVP_MD_CTX *, owned here
        defer { EVP_MD_CTX_free(context) }
        precondition(EVP_DigestSignInit(context, nil, digest, nil, key) == 1)
        var length = 0
        precondition(EVP_DigestSign(context, nil, &length, message, message.count) == 1)
        var signature = [UInt8](repeating: 0, count: length)
        precondition(EVP_DigestSign(context, &signature, &length, message, message.count) == 1)
        return Array(signature.prefix(length))
    }

    private static func generate(_ type: Int32, configure: (OpaquePointer) -> Int32) -> OpaquePointer {
        let context = EVP_PKEY_CTX_new_id(type, nil)!  // EVP_PKEY_CTX *, owned here
        defer { EVP_PKEY_CTX_free(context) }
        precondition(EVP_PKEY_keygen_init(context) == 1 && configure(context) > 0)
        var pkey: OpaquePointer?
        precondition(EVP_PKEY_keygen(context, &pkey) == 1)
        return pkey!
    }

    private static func bignumParameter(_ pkey: OpaquePointer, _ name: String, width: Int32 = 0) -> String {
        var number: OpaquePointer?
        precondition(EVP_PKEY_get_bn_param(pkey, name, &number) == 1)
        defer { BN_free(number) }
        let length = width > 0 ? width : (BN_num_bits(number) + 7) / 8
        var bytes = [UInt8](repeating: 0, count: Int(length))
        precondition(BN_bn2binpad(number, &bytes, length) == length)
        return Base64URL.encode(bytes)
    }
}

/// Builds tokens for the tests: any header, any claims, signed by a test key or not at all.
enum JOSETestTokens {
    static let issuer = "https://idp.example/realms/dev"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// Claims that pass the default test configuration at `now`.
    static func claims(_ overrides: [String: Any?] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": Self.issuer, "aud": "porthole", "sub": "f3a9c1", "email": "alice@example.com",
            "groups": ["dev", "oncall"], "iat": 1_800_000_000 - 10, "exp": 1_800_000_000 + 300, "jti": "id-1",
        ]
        for (name, value) in overrides { claims[name] = value }
        return claims
    }

    static func json(_ object: Any) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// `header.claims.signature`, with the signature made by `key` (or `signature` when given).
    static func token(
        header: [String: Any], claims: [String: Any] = Self.claims(), key: JOSETestKey?, signature: [UInt8]? = nil
    ) -> String {
        let signingInput = Base64URL.encode(Self.json(header)) + "." + Base64URL.encode(Self.json(claims))
        let algorithm = header["alg"] as? String ?? ""
        let signature = signature ?? key.map { $0.sign(Array(signingInput.utf8), algorithm: algorithm) } ?? []
        return signingInput + "." + Base64URL.encode(signature)
    }

    static func keySet(_ keys: [[String: Any]]) -> JWKSet {
        try! JWKSet(json: Self.json(["keys": keys]))
    }
}
