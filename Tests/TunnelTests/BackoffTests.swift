import Testing
@testable import Tunnel

@Suite struct BackoffTests {
    /// A generator that always draws the top of the range, to see each ceiling.
    struct Highest: RandomNumberGenerator {
        mutating func next() -> UInt64 { .max }
    }

    @Test func ceilingDoublesUpToTheMaximumAndResets() {
        var backoff = Backoff(minimum: 0.5, maximum: 4)
        var generator = Highest()
        let ceilings = (0..<6).map { _ in backoff.nextDelay(using: &generator) }
        #expect(ceilings.map { ($0 * 10).rounded() / 10 } == [0.5, 1, 2, 4, 4, 4])
        backoff.reset()
        #expect(backoff.nextDelay(using: &generator) <= 0.5)
    }

    @Test func delaysAreJitteredBelowTheCeiling() {
        var backoff = Backoff(minimum: 1, maximum: 1)
        let delays = (0..<200).map { _ in backoff.nextDelay() }
        #expect(delays.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(Set(delays.map { Int($0 * 10) }).count > 5, "full jitter spreads the delays")
    }
}
