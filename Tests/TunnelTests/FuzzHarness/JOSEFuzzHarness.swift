@testable import Tunnel

/// OIDC tokens and key sets: `JOSEFuzzEntry.parseUntrusted`, which parses the bytes as a compact JWS (algorithm,
/// claims, claim checks, signature against fixed Ed25519 and P-256 keys) and as a JWK Set. Input: the bytes.
///
/// Property: no crash; the entry point discards every result.
enum JOSEFuzzHarness {
    static let target = FuzzTarget("jose", run: Self.run)

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        JOSEFuzzEntry.parseUntrusted(input)
    }
}
