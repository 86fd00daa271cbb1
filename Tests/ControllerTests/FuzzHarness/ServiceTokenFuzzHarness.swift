import Foundation

#if canImport(Controller)
    @testable import Controller  // the fuzz build compiles these sources into its one module, Tunnel
#endif
@testable import Tunnel

/// Service-token parsing and verification. Input: a control byte, then text. With bit 0 clear the text is the
/// token as a user would send it. With bit 0 set the text is `header JSON \n claims JSON`, which the harness
/// encodes and signs with the test CA's key, so the claims decoding behind the signature check is reached too.
///
/// Properties: every refusal is a `ServiceTokenError`; an accepted token has the expected audience and is
/// unexpired; its claims signed again verify to the same claims; base64url round-trips.
enum ServiceTokenFuzzHarness {
    static let target = FuzzTarget("service-token", run: Self.run)
    static let audience = "porthole-service"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    /// The CA whose key signs and whose certificate verifies; made once per process.
    static let authority: CertificateAuthority = {
        do {
            return try CertificateAuthority.create(commonName: "Fuzz CA", validity: 3600)
        } catch {
            fatalError("cannot create the fuzz CA: \(error)")
        }
    }()

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        var reader = FuzzInputReader(input)
        let control = reader.byte()
        let text = reader.rest
        let encoded = ServiceToken.base64URL(text)
        try FuzzFinding.check(
            ServiceToken.decodeBase64URL(encoded[...]) == text, "base64url does not round-trip \(text)")

        let token: String
        if control & 1 == 0 {
            token = String(decoding: text, as: UTF8.self)
        } else {
            let newline = text.firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            let header = ServiceToken.base64URL(Array(text[..<newline]))
            let claims = ServiceToken.base64URL(Array(text[min(newline + 1, text.count)...]))
            let signingInput = "\(header).\(claims)"
            guard let signature = try? ES256.signature(of: Array(signingInput.utf8), key: Self.authority.key) else {
                throw FuzzFinding("cannot sign \(signingInput)")
            }
            token = "\(signingInput).\(ServiceToken.base64URL(signature))"
        }
        let claims: ServiceTokenClaims
        do {
            claims = try ServiceToken.verify(
                token, certificate: Self.authority.certificate, audience: Self.audience, now: Self.now)
        } catch is ServiceTokenError {
            return
        } catch {
            throw FuzzFinding("verify threw \(error), not a ServiceTokenError")
        }
        try FuzzFinding.check(claims.aud == Self.audience, "accepted a token for audience \(claims.aud)")
        try FuzzFinding.check(
            TimeInterval(claims.exp) > Self.now.timeIntervalSince1970, "accepted a token that expired at \(claims.exp)")
        do {
            let resigned = try ServiceToken.sign(claims, key: Self.authority.key)
            let again = try ServiceToken.verify(
                resigned, certificate: Self.authority.certificate, audience: Self.audience, now: Self.now)
            try FuzzFinding.check(again == claims, "claims changed when signed again: \(claims) became \(again)")
        } catch let finding as FuzzFinding {
            throw finding
        } catch {
            throw FuzzFinding("accepted claims \(claims) do not survive signing again: \(error)")
        }
    }
}
