/// Which timeout an HTTP/1.1 server connection is under, as a sans-I/O state machine: the connection reports
/// what happened and arms its one timer for `deadline`.
///
/// - From accept, the TLS handshake and the first request head must be complete within the head timeout.
/// - After a response, the connection may sit idle (nothing received) for the idle timeout; the first byte of
///   the next request starts the head timeout, which does not move however slowly the rest arrives.
/// - While a request is being served (its body, the response, an upgraded connection) no timeout applies: a
///   watch or an exec session lasts as long as it lasts.
///
/// Times are monotonic nanoseconds.
package struct HTTP1ServerTimeouts: Sendable, Equatable {
    /// What the connection is doing, with the deadline that applies.
    package enum Phase: Sendable, Equatable {
        /// A request head is due by `deadline`.
        case awaitingHead(deadline: UInt64)
        /// Between requests, nothing received yet; the connection closes at `deadline`.
        case idle(deadline: UInt64)
        /// A request is in progress; no deadline.
        case busy
    }

    /// Which timeout ran out.
    package enum Expiry: Sendable, Equatable {
        case head, idle
    }

    package let headTimeout: UInt64
    package let idleTimeout: UInt64
    package private(set) var phase: Phase

    /// A connection accepted at `acceptedAt` owes its first head by `acceptedAt + headTimeout`.
    package init(headTimeout: UInt64, idleTimeout: UInt64, acceptedAt: UInt64) {
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
        self.phase = .awaitingHead(deadline: acceptedAt &+ headTimeout)
    }

    /// When the timer should fire; nil while busy.
    package var deadline: UInt64? {
        switch self.phase {
        case .awaitingHead(let deadline), .idle(let deadline): deadline
        case .busy: nil
        }
    }

    /// Bytes arrived while no request is in progress: an idle connection starts its head timeout now.
    package mutating func bytesArrived(at now: UInt64) {
        if case .idle = self.phase { self.phase = .awaitingHead(deadline: now &+ self.headTimeout) }
    }

    /// A complete head arrived: the request is served without a deadline.
    package mutating func requestStarted() {
        self.phase = .busy
    }

    /// The exchange is over and the connection stays open. With `hasBufferedBytes` the next request has begun
    /// to arrive (pipelining), so its head timeout starts; otherwise the idle timeout does.
    package mutating func exchangeFinished(at now: UInt64, hasBufferedBytes: Bool) {
        guard case .busy = self.phase else { return }
        self.phase = hasBufferedBytes
            ? .awaitingHead(deadline: now &+ self.headTimeout) : .idle(deadline: now &+ self.idleTimeout)
    }

    /// The timeout that ran out by `now`, if any.
    package func expired(at now: UInt64) -> Expiry? {
        switch self.phase {
        case .awaitingHead(let deadline): now >= deadline ? .head : nil
        case .idle(let deadline): now >= deadline ? .idle : nil
        case .busy: nil
        }
    }
}
