import Foundation

/// When to fetch one issuer's JWK Set, as a sans-I/O state machine: the owner performs the fetches it is told to
/// and reports each outcome with `fetchSucceeded` or `fetchFailed`.
///
/// - One fetch at a time.
/// - A first fetch at `start`, then a background refresh `refreshInterval` after the last fetch began.
/// - A token with an unknown `kid` starts a refetch at most once per `minimumRefetchInterval` (counted from the
///   last fetch of any kind), so a storm of made-up kids costs one fetch per interval.
/// - A failed fetch keeps the last good set and is retried after `failureRetryInterval`, doubling per consecutive
///   failure up to `refreshInterval`.
package struct JWKSCache: Sendable {
    /// Intervals, in seconds.
    package struct Configuration: Sendable, Equatable {
        /// Time between background refreshes.
        package var refreshInterval: TimeInterval
        /// Least time between the start of two fetches caused by unknown kids.
        package var minimumRefetchInterval: TimeInterval
        /// First retry delay after a failed fetch.
        package var failureRetryInterval: TimeInterval

        /// Defaults: refresh every 5 minutes, refetch for an unknown kid at most every 30 s, retry after 5 s.
        package init(
            refreshInterval: TimeInterval = 300, minimumRefetchInterval: TimeInterval = 30,
            failureRetryInterval: TimeInterval = 5
        ) {
            self.refreshInterval = refreshInterval
            self.minimumRefetchInterval = minimumRefetchInterval
            self.failureRetryInterval = min(failureRetryInterval, refreshInterval)
        }
    }

    /// What the owner does next.
    package enum Action: Sendable, Equatable {
        /// Nothing now.
        case none
        /// Fetch the key set and report the outcome.
        case fetch
    }

    /// The answer to "which keys for this token?".
    package enum Lookup: Sendable {
        /// Verify with these keys (they contain the kid, or the token named none).
        case keys(JWKSet)
        /// A fetch has just been started for this kid: fetch, report, then look up again once.
        case fetchThenRetry
        /// A fetch is already running: wait for it (or refuse), then look up again once.
        case waitForFetch
        /// The kid is unknown and a refetch is not allowed yet: refuse (`unknownKeyID`, or `noKeys` with no set).
        case unknown
    }

    /// The intervals in use.
    package let configuration: Configuration
    /// The last set fetched successfully; kept while later fetches fail.
    package private(set) var keySet: JWKSet?
    /// Whether a fetch is running.
    package private(set) var isFetching = false
    /// When the last fetch began.
    package private(set) var lastFetchStart: Date?
    /// When the key set was last replaced.
    package private(set) var lastSuccess: Date?
    /// Failures since the last success.
    package private(set) var consecutiveFailures = 0
    /// Why the last fetch failed, until one succeeds.
    package private(set) var lastFailure: String?

    /// A cache with nothing fetched yet.
    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The first fetch.
    package mutating func start(now: Date) -> Action {
        self.tick(now: now)
    }

    /// When the owner should call `tick` next; nil while a fetch runs (its outcome reschedules).
    package var nextFetchDue: Date? {
        guard !self.isFetching else { return nil }
        guard let lastFetchStart = self.lastFetchStart else { return .distantPast }
        guard self.consecutiveFailures > 0 else { return lastFetchStart + self.configuration.refreshInterval }
        let doublings = Double(min(self.consecutiveFailures - 1, 30))
        let delay = min(self.configuration.refreshInterval, self.configuration.failureRetryInterval * pow(2, doublings))
        return lastFetchStart + delay
    }

    /// A background refresh or retry when one is due.
    package mutating func tick(now: Date) -> Action {
        guard let due = self.nextFetchDue, now >= due else { return .none }
        self.beginFetch(now: now)
        return .fetch
    }

    /// The keys for a token naming `keyID` (nil: the token names none), starting a refetch when the kid is
    /// unknown and the rate limit allows.
    package mutating func lookup(keyID: String?, now: Date) -> Lookup {
        if let keySet = self.keySet, keyID.map(keySet.contains(keyID:)) ?? true { return .keys(keySet) }
        if self.isFetching { return .waitForFetch }
        if let lastFetchStart = self.lastFetchStart, now < lastFetchStart + self.configuration.minimumRefetchInterval {
            return .unknown
        }
        self.beginFetch(now: now)
        return .fetchThenRetry
    }

    /// Whether `lookup(keyID:now:)` would answer `.fetchThenRetry` or `.waitForFetch` (a caller that must wait for a
    /// fetch), without starting anything.
    package func lookupWouldWait(keyID: String?, now: Date) -> Bool {
        if let keySet = self.keySet, keyID.map(keySet.contains(keyID:)) ?? true { return false }
        if self.isFetching { return true }
        if let lastFetchStart = self.lastFetchStart, now < lastFetchStart + self.configuration.minimumRefetchInterval {
            return false
        }
        return true
    }

    /// The keys for `keyID` in the current set, without starting anything; empty when unknown.
    package func keys(for keyID: String) -> [JWK] {
        self.keySet?.keys.filter { $0.keyID == keyID } ?? []
    }

    /// A fetch ended with a usable set, which replaces the old one.
    package mutating func fetchSucceeded(_ keySet: JWKSet, now: Date) {
        self.keySet = keySet
        self.isFetching = false
        self.lastSuccess = now
        self.consecutiveFailures = 0
        self.lastFailure = nil
    }

    /// A fetch failed (network, HTTP status, size, or a set without usable keys); the last good set stays.
    package mutating func fetchFailed(_ reason: String, now: Date) {
        self.isFetching = false
        self.consecutiveFailures += 1
        self.lastFailure = reason
    }

    private mutating func beginFetch(now: Date) {
        self.isFetching = true
        self.lastFetchStart = now
    }
}
