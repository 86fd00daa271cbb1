import Foundation

/// Exponential backoff with full jitter: the n-th wait is uniform in [0, min(max, min·2ⁿ)], so agents that lost
/// the same controller do not come back in the same second. `reset()` after a healthy period.
package struct Backoff: Sendable {
    package let minimum: TimeInterval
    package let maximum: TimeInterval
    package private(set) var attempt = 0

    package init(minimum: TimeInterval, maximum: TimeInterval) {
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
    }

    /// The next delay, drawn with `generator`.
    package mutating func nextDelay<G: RandomNumberGenerator>(using generator: inout G) -> TimeInterval {
        let ceiling = min(self.maximum, self.minimum * pow(2, Double(min(self.attempt, 30))))
        self.attempt += 1
        return Double.random(in: 0...ceiling, using: &generator)
    }

    package mutating func nextDelay() -> TimeInterval {
        var generator = SystemRandomNumberGenerator()
        return self.nextDelay(using: &generator)
    }

    package mutating func reset() {
        self.attempt = 0
    }
}
