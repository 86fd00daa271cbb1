import Foundation
import Synchronization
import Testing

@testable import Tunnel

/// A clock the test moves by hand, and a sink that keeps the lines: no sleeping.
private final class SteppedClock: Sendable {
    let now = Atomic<UInt64>(1_000_000_000)

    func advance(seconds: Double) {
        self.now.add(UInt64(seconds * 1e9), ordering: .relaxed)
    }
}

private final class RecordedLines: Sendable {
    let lines = Mutex<[(LogLevel, String, [String: String])]>([])

    var count: Int { self.lines.withLock { $0.count } }
    var counts: [String] { self.lines.withLock { $0.map { $0.2["count"] ?? "-" } } }
}

@Suite struct RateLimitedLogTests {
    @Test func firstOccurrenceIsWrittenThenOncePerIntervalWithACount() {
        var throttle = RepeatedFailureThrottle(interval: 10_000_000_000)
        #expect(throttle.occurred(at: 0) == .write(count: 1))
        for second in 1...9 {
            #expect(throttle.occurred(at: UInt64(second) * 1_000_000_000) == .suppress)
        }
        // 9 folded since the first line, plus this one.
        #expect(throttle.occurred(at: 10_000_000_000) == .write(count: 10))
        #expect(throttle.occurred(at: 10_000_000_001) == .suppress)
        #expect(throttle.occurred(at: 30_000_000_000) == .write(count: 2))
    }

    @Test func recoveryReportsWhatNoLineDidAndRestarts() {
        var throttle = RepeatedFailureThrottle(interval: 10_000_000_000)
        #expect(throttle.occurred(at: 0) == .write(count: 1))
        #expect(throttle.occurred(at: 1) == .suppress)
        #expect(throttle.occurred(at: 2) == .suppress)
        #expect(throttle.recovered() == 2)
        #expect(throttle.recovered() == 0)
        // A new run of failures is written at once, however soon.
        #expect(throttle.occurred(at: 3) == .write(count: 1))
    }

    @Test func aFloodBecomesOneLinePerIntervalPerKey() {
        let clock = SteppedClock()
        let recorded = RecordedLines()
        let log = RateLimitedLog(interval: 5, clock: { clock.now.load(ordering: .relaxed) }) { level, message, fields in
            recorded.lines.withLock { $0.append((level, message, fields)) }
        }
        // 100,000 failures a second for 12 seconds, as an accept loop on EMFILE would produce.
        for _ in 0..<1200 {
            for _ in 0..<1000 {
                log.record(.warning, "accept failed", key: "accept", ["listener": "service"])
            }
            clock.advance(seconds: 0.01)
        }
        #expect(recorded.count == 3)  // at 0 s, 5 s and 10 s
        #expect(recorded.counts == ["1", "500000", "500000"])
        #expect(recorded.lines.withLock { $0.allSatisfy { $0.1 == "accept failed" && $0.2["listener"] == "service" } })
        #expect(log.recovered(key: "accept") == 199_999)
        // Keys are independent.
        log.record(.warning, "dial failed", key: "a")
        log.record(.warning, "dial failed", key: "b")
        log.record(.warning, "dial failed", key: "a")
        #expect(recorded.count == 5)
    }

    @Test func fieldsAreBuiltOnlyForWrittenLines() {
        let clock = SteppedClock()
        let built = Atomic<Int>(0)
        let log = RateLimitedLog(interval: 1, clock: { clock.now.load(ordering: .relaxed) }) { _, _, _ in }
        func fields() -> [String: String] {
            built.add(1, ordering: .relaxed)
            return [:]
        }
        for _ in 0..<100 { log.record(.warning, "x", key: "k", fields()) }
        #expect(built.load(ordering: .relaxed) == 1)
    }
}

@Suite struct HTTP1ServerTimeoutsTests {
    private let second: UInt64 = 1_000_000_000

    @Test func firstHeadIsDueByAcceptPlusTheHeadTimeoutHoweverSlowlyItArrives() {
        var timeouts = HTTP1ServerTimeouts(headTimeout: 10 * self.second, idleTimeout: 60 * self.second,
                                           acceptedAt: 5 * self.second)
        #expect(timeouts.deadline == 15 * self.second)
        // A byte a second (slowloris) does not move the deadline.
        for at in 6...14 {
            timeouts.bytesArrived(at: UInt64(at) * self.second)
            #expect(timeouts.deadline == 15 * self.second)
        }
        #expect(timeouts.expired(at: 15 * self.second - 1) == nil)
        #expect(timeouts.expired(at: 15 * self.second) == .head)
    }

    @Test func aRequestInProgressHasNoDeadline() {
        var timeouts = HTTP1ServerTimeouts(headTimeout: self.second, idleTimeout: self.second, acceptedAt: 0)
        timeouts.requestStarted()
        #expect(timeouts.deadline == nil)
        // A watch or an upload an hour long is never cut.
        #expect(timeouts.expired(at: 3600 * self.second) == nil)
        timeouts.bytesArrived(at: 3600 * self.second)
        #expect(timeouts.deadline == nil)
    }

    @Test func afterAResponseTheIdleTimeoutRunsUntilTheNextRequestBegins() {
        var timeouts = HTTP1ServerTimeouts(headTimeout: 10 * self.second, idleTimeout: 60 * self.second,
                                           acceptedAt: 0)
        timeouts.requestStarted()
        timeouts.exchangeFinished(at: 100 * self.second, hasBufferedBytes: false)
        #expect(timeouts.phase == .idle(deadline: 160 * self.second))
        #expect(timeouts.expired(at: 160 * self.second) == .idle)
        // The first byte of the next request starts its head timeout.
        timeouts.bytesArrived(at: 130 * self.second)
        #expect(timeouts.phase == .awaitingHead(deadline: 140 * self.second))
        timeouts.bytesArrived(at: 135 * self.second)
        #expect(timeouts.deadline == 140 * self.second)
    }

    @Test func aPipelinedRequestStartsItsHeadTimeoutWhenTheResponseBeforeItEnds() {
        var timeouts = HTTP1ServerTimeouts(headTimeout: 10 * self.second, idleTimeout: 60 * self.second,
                                           acceptedAt: 0)
        timeouts.requestStarted()
        timeouts.exchangeFinished(at: 50 * self.second, hasBufferedBytes: true)
        #expect(timeouts.phase == .awaitingHead(deadline: 60 * self.second))
        // Only a finished exchange moves the clock: a second report changes nothing.
        timeouts.exchangeFinished(at: 55 * self.second, hasBufferedBytes: false)
        #expect(timeouts.phase == .awaitingHead(deadline: 60 * self.second))
    }
}
