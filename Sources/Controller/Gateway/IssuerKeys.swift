import Dispatch
import Foundation
import Tunnel

/// Where an issuer's JWK Set comes from, as the I/O seam of `IssuerKeys`: the controller's HTTPS client or a file.
protocol KeySetSource: Sendable {
    /// Fetches the key set document's bytes and calls `completion` once, on any queue.
    func fetch(completion: @escaping @Sendable (Result<[UInt8], KeySetFetchError>) -> Void)
    /// A fingerprint that changes when the source should be fetched again at once (a file's inode, size, mtime);
    /// nil for sources that only refresh on the schedule.
    var changeFingerprint: String? { get }
}

/// Why a key set could not be fetched; the text names URLs and statuses, never key material.
struct KeySetFetchError: Error, Equatable, Sendable, CustomStringConvertible {
    var description: String
}

/// One issuer's verification: its keys on the `JWKSCache` schedule (first fetch at start, background refresh, a
/// refetch on an unknown kid at most once per interval, the last good set kept), the verifier, and the cache of
/// verified identities.
///
/// A token that needs keys being fetched (the first fetch, or the refetch its unknown kid started) waits for that
/// fetch, at most `waitLimit`, on the caller's thread, then is verified once more with whatever set is in force.
final class IssuerKeys {
    let configuration: GatewayConfiguration.Issuer
    let verifier: TokenVerifier
    let identities = VerifiedIdentityCache()
    /// The longest a request waits for a fetch in progress.
    let waitLimit: TimeInterval
    private let source: any KeySetSource
    private let condition = NSConditionBox()
    /// Set once, by `start`.
    private var timer: DispatchSourceTimer?

    /// Guarded by `condition`.
    private struct State {
        var cache: JWKSCache
        /// Incremented whenever a fetch ends, so waiters see that theirs did.
        var completedFetches = 0
        var fingerprint: String?
    }

    private var state: State

    init(configuration: GatewayConfiguration.Issuer, source: any KeySetSource, waitLimit: TimeInterval = 5) {
        self.configuration = configuration
        self.verifier = TokenVerifier(configuration: configuration.verifierConfiguration)
        self.source = source
        self.waitLimit = waitLimit
        self.state = State(cache: JWKSCache(configuration: configuration.cacheConfiguration),
                           fingerprint: source.changeFingerprint)
    }

    deinit {
        self.timer?.cancel()
    }

    /// Starts the first fetch and the schedule (checked every second).
    func start() {
        let action = self.condition.locked { self.state.cache.start(now: Date()) }
        if action == .fetch { self.beginFetch() }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "porthole.gateway.keys"))
        timer.schedule(deadline: .now() + 1, repeating: 1, leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.tick() }
        timer.resume()
        self.timer = timer
    }

    /// Stops the schedule.
    func stop() {
        self.timer?.cancel()
    }

    private func tick() {
        let fingerprint = self.source.changeFingerprint
        let action: JWKSCache.Action = self.condition.locked {
            let now = Date()
            if fingerprint != self.state.fingerprint, !self.state.cache.isFetching {
                self.state.fingerprint = fingerprint
                // A changed file is read at once, whatever the schedule says.
                return .fetch
            }
            return self.state.cache.tick(now: now)
        }
        if action == .fetch { self.beginFetch() }
    }

    private func beginFetch() {
        let source = self.source
        let issuer = self.configuration.issuer
        source.fetch { [weak self] result in
            guard let self else { return }
            let now = Date()
            switch result.flatMap({ bytes in
                Result { () throws(JWKSetError) -> JWKSet in try JWKSet(json: bytes) }
                    .mapError { KeySetFetchError(description: "\($0)") }
            }) {
            case .success(let keySet):
                for skipped in keySet.skipped {
                    Log.warning("a key of the issuer's key set is skipped", ["issuer": issuer, "reason": skipped])
                }
                self.condition.locked {
                    self.state.cache.fetchSucceeded(keySet, now: now)
                    self.state.completedFetches += 1
                }
                Log.info("issuer keys fetched", ["issuer": issuer, "keys": "\(keySet.keys.count)"])
            case .failure(let error):
                let hasKeys = self.condition.locked {
                    self.state.cache.fetchFailed(error.description, now: now)
                    self.state.completedFetches += 1
                    return self.state.cache.keySet != nil
                }
                Log.warning("fetching the issuer's keys failed" + (hasKeys ? "; keeping the last good set" : ""),
                            ["issuer": issuer, "error": error.description])
            }
            self.condition.broadcast()
        }
    }

    /// The identity `token` proves now, or why not.
    func verify(_ token: String, now: Date = Date()) -> Result<VerifiedIdentity, TokenRefusal> {
        let jws: JWS
        switch ParsedTokenMemo.shared.parse(token) {
        case .success(let parsed): jws = parsed.jws
        case .failure(let error): return .failure(error)
        }
        if let identity = self.identities.identity(for: jws.digest, now: now) { return .success(identity) }
        let (lookup, generation) = self.condition.locked {
            (self.state.cache.lookup(keyID: jws.keyID, now: now), self.state.completedFetches)
        }
        let keys: JWKSet?
        switch lookup {
        case .keys(let set):
            keys = set
        case .unknown:
            keys = self.condition.locked { self.state.cache.keySet }
        case .fetchThenRetry:
            self.beginFetch()
            keys = self.waitForFetch(after: generation)
        case .waitForFetch:
            keys = self.waitForFetch(after: generation)
        }
        do {
            let identity = try self.verifier.verify(jws, keys: keys, now: now)
            self.identities.remember(identity, now: now)
            return .success(identity)
        } catch {
            return .failure(error)
        }
    }

    /// Whether verifying a token naming `keyID` would wait for a key fetch now (no key set yet, or an unknown kid
    /// that may be refetched); starts nothing.
    func wouldWait(keyID: String?, now: Date = Date()) -> Bool {
        self.condition.locked { self.state.cache.lookupWouldWait(keyID: keyID, now: now) }
    }

    /// Waits until a fetch completed after `generation` (at most `waitLimit`); the key set in force then.
    private func waitForFetch(after generation: Int) -> JWKSet? {
        let deadline = Date().addingTimeInterval(self.waitLimit)
        return self.condition.locked {
            while self.state.completedFetches == generation {
                if !self.condition.wait(until: deadline) { break }
            }
            return self.state.cache.keySet
        }
    }

    /// Whether a key set is in force, and why the last fetch failed (for logs and `/readyz`-style checks).
    var status: (hasKeys: Bool, lastFailure: String?) {
        self.condition.locked { (self.state.cache.keySet != nil, self.state.cache.lastFailure) }
    }
}

// `state` is touched only under `condition`'s lock; the rest is immutable or thread-safe.
extension IssuerKeys: @unchecked Sendable {}

/// An `NSCondition` with a closure-scoped lock.
final class NSConditionBox: @unchecked Sendable {
    private let condition = NSCondition()

    func locked<Value>(_ body: () throws -> Value) rethrows -> Value {
        self.condition.lock()
        defer { self.condition.unlock() }
        return try body()
    }

    /// Waits (the lock held) until signalled or `deadline`; false when the deadline passed.
    func wait(until deadline: Date) -> Bool {
        self.condition.wait(until: deadline)
    }

    func broadcast() {
        self.condition.lock()
        self.condition.broadcast()
        self.condition.unlock()
    }
}

/// Keys over HTTPS with the controller's own client: the JWK Set URL as configured, or found through OIDC discovery
/// (`ISSUER/.well-known/openid-configuration`, whose `issuer` must be the configured one, and its `jwks_uri`).
struct HTTPKeySetSource: KeySetSource {
    let issuer: String
    let jwksURL: String?
    let client: HTTPClient

    var changeFingerprint: String? { nil }

    func fetch(completion: @escaping @Sendable (Result<[UInt8], KeySetFetchError>) -> Void) {
        if let jwksURL {
            self.get(jwksURL, completion: completion)
            return
        }
        let base = self.issuer.hasSuffix("/") ? String(self.issuer.dropLast()) : self.issuer
        let discoveryURL = base + "/.well-known/openid-configuration"
        let issuer = self.issuer
        self.get(discoveryURL) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let bytes):
                guard let document = JSONValue.parse(bytes)?.object else {
                    completion(.failure(KeySetFetchError(description: "\(discoveryURL): not a JSON object")))
                    return
                }
                guard document["issuer"]?.string == issuer else {
                    completion(.failure(KeySetFetchError(
                        description: "\(discoveryURL): its issuer is not the configured issuer")))
                    return
                }
                guard let jwksURI = document["jwks_uri"]?.string, let url = HTTPClientURL(jwksURI),
                      url.isSecure || GatewayConfiguration.Issuer.isLoopback(url.host) else {
                    completion(.failure(KeySetFetchError(
                        description: "\(discoveryURL): jwks_uri is missing or not an https URL")))
                    return
                }
                self.get(jwksURI, completion: completion)
            }
        }
    }

    private func get(_ text: String, completion: @escaping @Sendable (Result<[UInt8], KeySetFetchError>) -> Void) {
        guard let url = HTTPClientURL(text) else {
            completion(.failure(KeySetFetchError(description: "\(text) is not an http(s) URL")))
            return
        }
        self.client.send(HTTPClientRequest(url: url, headers: [HTTPField("accept", "application/json")])) { result in
            switch result {
            case .success(let response) where response.status == 200:
                completion(.success(response.body))
            case .success(let response):
                completion(.failure(KeySetFetchError(description: "\(url): HTTP \(response.status)")))
            case .failure(let error):
                completion(.failure(KeySetFetchError(description: "\(url): \(error)")))
            }
        }
    }
}

/// Keys from a file, re-read when its fingerprint changes.
struct FileKeySetSource: KeySetSource {
    let path: String

    var changeFingerprint: String? { FileFingerprint.of([self.path]) }

    func fetch(completion: @escaping @Sendable (Result<[UInt8], KeySetFetchError>) -> Void) {
        guard let data = FileManager.default.contents(atPath: self.path) else {
            completion(.failure(KeySetFetchError(description: "\(self.path): cannot read the file")))
            return
        }
        completion(.success(Array(data)))
    }
}
