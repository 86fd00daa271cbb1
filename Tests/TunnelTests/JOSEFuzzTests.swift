import Foundation
import Testing

@testable import Tunnel

/// Randomized inputs through `JOSEFuzzEntry.parseUntrusted`, the function the libFuzzer target calls: mutated
/// tokens and key sets must be refused, never crash. A failing seed replays with `HTTP1FuzzRandom(seed:)`.
@Suite struct JOSEFuzzTests {
    typealias T = JOSETestTokens

    static let seeds: [[UInt8]] = {
        let ed = JOSETestKey.ed25519()
        let ec = JOSETestKey.p256()
        return [
            Array(T.token(header: ["alg": "EdDSA", "kid": "ed"], key: ed).utf8),
            Array(T.token(header: ["alg": "ES256", "kid": "ec", "crit": ["x"]], key: ec).utf8),
            Array(T.token(header: ["alg": "none"], key: nil).utf8),
            T.json(["keys": [ed.jwk(["kid": "a"]), ec.jwk(["kid": "b", "use": "sig"]), ["kty": "oct", "k": "AA"]]]),
            Array(#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#.utf8),
        ]
    }()

    static let alphabet = Array("AZaz09-_.=+/{}[]\",:\\ \u{0}".utf8)

    @Test func mutatedInputsNeverCrash() {
        var random = HTTP1FuzzRandom(seed: 0x4A05_E5EE_D000_0001)
        for _ in 0..<3000 {
            var input = Self.seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...8, using: &random) where !input.isEmpty {
                let index = Int.random(in: 0..<input.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: input[index] = Self.alphabet.randomElement(using: &random)!
                case 1: input.remove(at: index)
                case 2: input.insert(UInt8.random(in: 0...255, using: &random), at: index)
                default: input[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                }
            }
            JOSEFuzzEntry.parseUntrusted(input)
        }
        for seed in Self.seeds { JOSEFuzzEntry.parseUntrusted(seed) }
        JOSEFuzzEntry.parseUntrusted([])
    }
}
