import Foundation
import Testing

@testable import Tunnel

/// The JWKS fetch schedule and the verified-identity cache, driven by a fake clock.
@Suite struct JWKSCacheTests {
    typealias T = JOSETestTokens

    static let ed = JOSETestKey.ed25519()
    static let first = T.keySet([Self.ed.jwk(["kid": "k1"])])
    static let second = T.keySet([Self.ed.jwk(["kid": "k1"]), Self.ed.jwk(["kid": "k2"])])

    static func at(_ seconds: TimeInterval) -> Date { Date(timeIntervalSince1970: 1_000_000 + seconds) }

    static func ready() -> JWKSCache {
        var cache = JWKSCache(configuration: .init(refreshInterval: 300, minimumRefetchInterval: 30,
                                                   failureRetryInterval: 5))
        #expect(cache.start(now: Self.at(0)) == .fetch)
        cache.fetchSucceeded(Self.first, now: Self.at(1))
        return cache
    }

    @Test func initialFetchThenBackgroundRefresh() {
        var cache = JWKSCache()
        #expect(cache.keySet == nil)
        #expect(cache.start(now: Self.at(0)) == .fetch)
        #expect(cache.tick(now: Self.at(0)) == .none && cache.nextFetchDue == nil)  // one fetch at a time
        cache.fetchSucceeded(Self.first, now: Self.at(1))
        #expect(cache.nextFetchDue == Self.at(300))
        #expect(cache.tick(now: Self.at(299)) == .none)
        #expect(cache.tick(now: Self.at(300)) == .fetch)
        cache.fetchSucceeded(Self.second, now: Self.at(301))
        #expect(cache.keys(for: "k2").count == 1 && cache.nextFetchDue == Self.at(600))
    }

    @Test func knownKeyIDNeedsNoFetch() {
        var cache = Self.ready()
        guard case .keys(let set) = cache.lookup(keyID: "k1", now: Self.at(2)) else {
            Issue.record("expected keys")
            return
        }
        #expect(set.contains(keyID: "k1"))
        guard case .keys = cache.lookup(keyID: nil, now: Self.at(2)) else {
            Issue.record("a token without kid uses the current set")
            return
        }
    }

    /// `lookupWouldWait` answers exactly when `lookup` would make its caller wait, and starts nothing.
    @Test func lookupWouldWaitMatchesLookupWithoutStartingAFetch() {
        var empty = JWKSCache()
        #expect(empty.lookupWouldWait(keyID: "k1", now: Self.at(0)))  // no key set yet
        #expect(empty.start(now: Self.at(0)) == .fetch)
        #expect(empty.lookupWouldWait(keyID: "k1", now: Self.at(0)))  // the first fetch is running
        var cache = Self.ready()
        #expect(!cache.lookupWouldWait(keyID: "k1", now: Self.at(2)) && !cache.lookupWouldWait(keyID: nil, now: Self.at(2)))
        #expect(cache.lookupWouldWait(keyID: "k2", now: Self.at(40)))
        #expect(cache.lookupWouldWait(keyID: "k2", now: Self.at(40)))  // still: asking started nothing
        #expect(cache.lookup(keyID: "k2", now: Self.at(40)).isFetchThenRetry)
        #expect(cache.lookupWouldWait(keyID: "k2", now: Self.at(40)))  // waits for the refetch in progress
        cache.fetchSucceeded(Self.first, now: Self.at(41))
        #expect(!cache.lookupWouldWait(keyID: "k2", now: Self.at(41)))  // refused at once within the interval
        #expect(cache.lookup(keyID: "k2", now: Self.at(41)).isUnknown)
    }

    @Test func unknownKeyIDRefetchesOnceThenIsRefused() {
        var cache = Self.ready()
        #expect(cache.lookup(keyID: "k2", now: Self.at(40)).isFetchThenRetry)
        #expect(cache.lookup(keyID: "k2", now: Self.at(40)).isWaitForFetch)
        cache.fetchSucceeded(Self.first, now: Self.at(41))  // the IdP does not know k2 either
        #expect(cache.lookup(keyID: "k2", now: Self.at(41)).isUnknown)
        #expect(cache.lookup(keyID: "k2", now: Self.at(69)).isUnknown)
        #expect(cache.lookup(keyID: "k2", now: Self.at(70)).isFetchThenRetry)
        cache.fetchSucceeded(Self.second, now: Self.at(71))  // rotated in
        guard case .keys = cache.lookup(keyID: "k2", now: Self.at(71)) else {
            Issue.record("expected the new key")
            return
        }
        // The refetch also resets the background refresh.
        #expect(cache.nextFetchDue == Self.at(370))
    }

    @Test func rotatedKeyVerifiesAfterOneRefetch() throws {
        var cache = Self.ready()
        let rotated = JOSETestKey.ed25519()
        let jws = try JWS(compact: T.token(header: ["alg": "EdDSA", "kid": "k2"], key: rotated))
        let verifier = TokenVerifier(configuration: .init(issuer: T.issuer, audiences: ["porthole"]))
        #expect(throws: TokenRefusal.unknownKeyID) { try verifier.verify(jws, keys: cache.keySet, now: T.now) }
        #expect(cache.lookup(keyID: jws.keyID, now: Self.at(40)).isFetchThenRetry)
        cache.fetchSucceeded(T.keySet([Self.ed.jwk(["kid": "k1"]), rotated.jwk(["kid": "k2"])]), now: Self.at(41))
        guard case .keys(let keys) = cache.lookup(keyID: jws.keyID, now: Self.at(41)) else {
            Issue.record("expected the rotated key")
            return
        }
        #expect(try verifier.verify(jws, keys: keys, now: T.now).keyID == "k2")
    }

    @Test func stormOfUnknownKeyIDsCostsOneFetchPerInterval() {
        var cache = Self.ready()
        var fetches = 0
        for step in 0..<12_000 {  // 1000 requests a second for 120 s, each with a new kid
            let now = Self.at(2 + Double(step) / 100)
            switch cache.lookup(keyID: "made-up-\(step)", now: now) {
            case .fetchThenRetry:
                fetches += 1
                cache.fetchSucceeded(Self.first, now: now)
            case .keys: Issue.record("a made-up kid found keys")
            case .waitForFetch, .unknown: break
            }
            if cache.tick(now: now) == .fetch {
                fetches += 1
                cache.fetchSucceeded(Self.first, now: now)
            }
        }
        #expect(fetches == 4)  // at 2, 32, 62 and 92 s
    }

    @Test func identityProviderDownKeepsLastGoodKeys() {
        var cache = Self.ready()
        #expect(cache.tick(now: Self.at(300)) == .fetch)
        cache.fetchFailed("connection refused", now: Self.at(301))
        #expect(cache.keySet != nil && cache.consecutiveFailures == 1 && cache.lastFailure == "connection refused")
        guard case .keys = cache.lookup(keyID: "k1", now: Self.at(302)) else {
            Issue.record("the last good set must still verify")
            return
        }
        // Retries back off: 5, 10, 20, … up to the refresh interval.
        var due: [TimeInterval] = []
        for _ in 0..<8 {
            let next = cache.nextFetchDue!
            due.append(next.timeIntervalSince(cache.lastFetchStart!))
            #expect(cache.tick(now: next) == .fetch)
            cache.fetchFailed("HTTP 503", now: next)
        }
        #expect(due == [5, 10, 20, 40, 80, 160, 300, 300])
        #expect(cache.keys(for: "k1").count == 1)
        // Unknown kids still refetch at the bounded rate while it is down, and recovery resets the schedule.
        let last = cache.lastFetchStart!
        #expect(cache.lookup(keyID: "k9", now: last + 29).isUnknown)
        #expect(cache.lookup(keyID: "k9", now: last + 30).isFetchThenRetry)
        cache.fetchSucceeded(Self.second, now: last + 31)
        #expect(cache.consecutiveFailures == 0 && cache.lastFailure == nil && cache.nextFetchDue == last + 330)
    }

    @Test func firstFetchFailingLeavesNoKeys() {
        var cache = JWKSCache()
        #expect(cache.start(now: Self.at(0)) == .fetch)
        cache.fetchFailed("timeout", now: Self.at(10))
        #expect(cache.lookup(keyID: "k1", now: Self.at(11)).isUnknown)
        #expect(throws: TokenRefusal.noKeys) {
            try TokenVerifier(configuration: .init(issuer: T.issuer, audiences: ["porthole"]))
                .verify(T.token(header: ["alg": "EdDSA", "kid": "k1"], key: Self.ed), keys: cache.keySet, now: T.now)
        }
        #expect(cache.tick(now: Self.at(4)) == .none && cache.tick(now: Self.at(5)) == .fetch)
    }

    @Test func verifiedIdentitiesAreCachedUntilExpiryAndBounded() throws {
        let verifier = TokenVerifier(configuration: .init(issuer: T.issuer, audiences: ["porthole"]))
        let keys = T.keySet([Self.ed.jwk(["kid": "k1"])])
        let cache = VerifiedIdentityCache(capacity: 3)
        let token = T.token(header: ["alg": "EdDSA", "kid": "k1"], key: Self.ed)
        let identity = try verifier.verify(token, keys: keys, now: T.now)
        cache.remember(identity, now: T.now)
        #expect(cache.identity(for: TokenDigest(of: token), now: T.now) == identity)
        #expect(cache.identity(for: TokenDigest(of: token + "x"), now: T.now) == nil)
        #expect(cache.identity(for: identity.tokenDigest, now: identity.expiresAt) == nil)  // expired, and dropped
        #expect(cache.count == 0)
        for index in 0..<10 {
            let other = T.token(
                header: ["alg": "EdDSA", "kid": "k1"], claims: T.claims(["jti": "\(index)"]), key: Self.ed)
            cache.remember(try verifier.verify(other, keys: keys, now: T.now), now: T.now)
            #expect(cache.count <= 3)
        }
        cache.remember(identity, now: identity.expiresAt)  // already expired: not kept
        #expect(cache.identity(for: identity.tokenDigest, now: T.now) == nil)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect("\(identity.tokenDigest)".count == 16 && !"\(identity)".contains(token))
    }
}

extension JWKSCache.Lookup {
    var isFetchThenRetry: Bool { if case .fetchThenRetry = self { true } else { false } }
    var isWaitForFetch: Bool { if case .waitForFetch = self { true } else { false } }
    var isUnknown: Bool { if case .unknown = self { true } else { false } }
}
