import Foundation

/// Exponential backoff with full jitter, the same rule as the agent's (`Sources/Agent/Backoff.swift`): the n-th
/// wait is uniform in [0, min(max, min·2ⁿ)].
///
/// A copy, because executable targets cannot import each other; it moves to `Tunnel` if the agent's does.
struct Backoff {
    let minimum: TimeInterval
    let maximum: TimeInterval
    private(set) var attempt = 0

    init(minimum: TimeInterval, maximum: TimeInterval) {
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
    }

    mutating func nextDelay() -> TimeInterval {
        let ceiling = min(self.maximum, self.minimum * pow(2, Double(min(self.attempt, 30))))
        self.attempt += 1
        return Double.random(in: 0...ceiling)
    }

    mutating func reset() {
        self.attempt = 0
    }
}
