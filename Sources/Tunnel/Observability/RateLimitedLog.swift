import Dispatch
import Foundation
import Synchronization

/// When to write a line for a failure that repeats: the first time, then at most once per interval. Each line
/// carries how many occurrences it stands for, so nothing is hidden, only folded.
///
/// Sans-I/O: the caller passes the time (monotonic nanoseconds), which makes it testable without sleeping.
package struct RepeatedFailureThrottle: Sendable, Equatable {
    /// Shortest time between two lines, in nanoseconds.
    package let interval: UInt64
    private var lastWrittenAt: UInt64?
    /// Occurrences since the last line, written or not.
    private var unreported = 0

    /// What to do with one occurrence.
    package enum Decision: Sendable, Equatable {
        /// Write a line standing for `count` occurrences (this one and those folded since the last line).
        case write(count: Int)
        /// Count it; a later line reports it.
        case suppress
    }

    package init(interval: UInt64) {
        self.interval = interval
    }

    /// Records one occurrence at `now`.
    package mutating func occurred(at now: UInt64) -> Decision {
        self.unreported += 1
        if let last = self.lastWrittenAt, now &- last < self.interval {
            return .suppress
        }
        let count = self.unreported
        self.unreported = 0
        self.lastWrittenAt = now
        return .write(count: count)
    }

    /// The failure stopped: returns the occurrences no line reported yet (0 if none) and starts afresh, so the
    /// next failure is written at once.
    package mutating func recovered() -> Int {
        defer {
            self.unreported = 0
            self.lastWrittenAt = nil
        }
        return self.unreported
    }
}

/// Logs a repeated failure (accept errors, dial errors) at most once per interval per key, with a `count` field:
/// how many occurrences the line stands for. A flood of identical failures becomes one line per interval.
package final class RateLimitedLog: Sendable {
    /// Monotonic nanoseconds.
    package typealias Clock = @Sendable () -> UInt64
    /// Where lines go: `Log` in production, a recorder in tests.
    package typealias Sink = @Sendable (_ level: LogLevel, _ message: String, _ fields: [String: String]) -> Void

    private let interval: UInt64
    private let clock: Clock
    private let sink: Sink
    private let throttles = Mutex<[String: RepeatedFailureThrottle]>([:])

    /// - Parameters:
    ///   - interval: shortest time between two lines for one key, in seconds.
    ///   - clock: the time now; injected by tests.
    ///   - sink: writes a line; `Log` by default.
    package init(interval: TimeInterval = 10, clock: @escaping Clock = { DispatchTime.now().uptimeNanoseconds },
                 sink: @escaping Sink = { Log.write($0, $1, $2) }) {
        self.interval = UInt64(max(0, interval) * 1e9)
        self.clock = clock
        self.sink = sink
    }

    /// Records one occurrence of the failure named `key` and writes `message` unless a line for `key` was written
    /// less than the interval ago. Fields are built only when a line is written.
    package func record(_ level: LogLevel, _ message: String, key: String,
                        _ fields: @autoclosure () -> [String: String] = [:]) {
        let now = self.clock()
        let decision = self.throttles.withLock { throttles in
            throttles[key, default: RepeatedFailureThrottle(interval: self.interval)].occurred(at: now)
        }
        guard case .write(let count) = decision else { return }
        var fields = fields()
        fields["count"] = "\(count)"
        self.sink(level, message, fields)
    }

    /// The failure named `key` stopped. Returns how many occurrences no line reported; the next one is written
    /// at once.
    @discardableResult
    package func recovered(key: String) -> Int {
        self.throttles.withLock { throttles in
            guard var throttle = throttles.removeValue(forKey: key) else { return 0 }
            return throttle.recovered()
        }
    }
}
