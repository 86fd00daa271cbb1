import Dispatch
import Synchronization

/// One token bucket per key (a user, a peer), shared by every connection: `burst` tokens, refilled at
/// `perSecond`. Thread-safe. Memory is bounded: a full bucket carries no information and is dropped, and past
/// `maxKeys` the fullest buckets are forgotten first.
package final class KeyedTokenBuckets: Sendable {
    package let burst: Double
    package let perSecond: Double
    private let maxKeys: Int
    private let clock: @Sendable () -> Double
    private let buckets = Mutex<[String: Bucket]>([:])

    private struct Bucket {
        var tokens: Double
        var updatedAt: Double
    }

    /// `clock` returns seconds on a monotonic scale; tests pass their own.
    package init(burst: Int, perSecond: Double, maxKeys: Int = 100_000,
                 clock: @escaping @Sendable () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }) {
        self.burst = Double(burst)
        self.perSecond = perSecond
        self.maxKeys = maxKeys
        self.clock = clock
    }

    /// Whether the limit is off (`burst` 0).
    package var isDisabled: Bool { self.burst <= 0 }

    /// Takes one token from `key`'s bucket, going below zero if it must (the cost was already paid).
    package func charge(_ key: String) {
        guard !self.isDisabled else { return }
        let now = self.clock()
        self.buckets.withLock { buckets in
            var bucket = self.refilled(buckets[key], at: now)
            bucket.tokens -= 1
            buckets[key] = bucket
            if buckets.count > self.maxKeys { self.prune(&buckets, at: now) }
        }
    }

    /// Nil while `key` has a token left; else the whole seconds until it has one again.
    package func wait(for key: String) -> Int? {
        guard !self.isDisabled else { return nil }
        let now = self.clock()
        return self.buckets.withLock { buckets -> Int? in
            guard let stored = buckets[key] else { return nil }
            let bucket = self.refilled(stored, at: now)
            if bucket.tokens >= self.burst {
                buckets[key] = nil
                return nil
            }
            buckets[key] = bucket
            if bucket.tokens >= 1 { return nil }
            guard self.perSecond > 0 else { return Int.max }
            return max(1, Int(((1 - bucket.tokens) / self.perSecond).rounded(.up)))
        }
    }

    /// Keys with a bucket that is not full.
    package var trackedKeyCount: Int { self.buckets.withLock { $0.count } }

    private func refilled(_ bucket: Bucket?, at now: Double) -> Bucket {
        guard var bucket else { return Bucket(tokens: self.burst, updatedAt: now) }
        bucket.tokens = min(self.burst, bucket.tokens + max(0, now - bucket.updatedAt) * self.perSecond)
        bucket.updatedAt = now
        return bucket
    }

    private func prune(_ buckets: inout [String: Bucket], at now: Double) {
        let ranked = buckets.map { ($0.key, self.refilled($0.value, at: now).tokens) }.sorted { $0.1 > $1.1 }
        for (key, _) in ranked.prefix(buckets.count - self.maxKeys / 2) { buckets[key] = nil }
    }
}
