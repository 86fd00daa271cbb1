import Dispatch
import Synchronization
import Tunnel

/// What a user-facing connection hears from its tunnel stream, on its own queue.
protocol TunnelStreamDelegate: AnyObject {
    func tunnelStream(_ stream: TunnelStream, didReceiveResponse headers: [HTTPField], endStream: Bool)
    func tunnelStream(_ stream: TunnelStream, didReceiveData bytes: [UInt8])
    func tunnelStreamDidEnd(_ stream: TunnelStream)
    /// Request bytes sent earlier left for the agent; more may be sent.
    func tunnelStream(_ stream: TunnelStream, didDrain count: Int)
    /// The stream is gone: 0 after a clean finish, else the reset code (refused, cancelled, tunnel lost).
    func tunnelStream(_ stream: TunnelStream, didClose errorCode: UInt32)
}

/// One user request crossing from a user connection's queue to a tunnel's queue and back.
///
/// Methods may be called from the user's queue; they hop to the tunnel queue. Events hop back to
/// `delegateQueue` in order. Response bytes are acknowledged (`consume`) only after the user's socket took them.
final class TunnelStream {
    let session: TunnelSession
    private let delegateQueue: DispatchQueue
    /// Cleared when the stream closes, which breaks the cycle with the delegate.
    private var delegate: TunnelStreamDelegate?
    /// Tunnel-queue state.
    private var streamID: Int32 = 0
    private var isClosed = false

    /// Events for the delegate, in order, and whether a delivery is queued on `delegateQueue`: what the tunnel
    /// queue produced in one batch (a small response's headers, body, end and close) crosses in one hop.
    private let outbox = Mutex<(events: [Event], isScheduled: Bool)>(([], false))

    private enum Event {
        case response([HTTPField], endStream: Bool)
        case data([UInt8])
        case end
        case drained(Int)
        case closed(UInt32)
    }

    init(session: TunnelSession, delegate: TunnelStreamDelegate, delegateQueue: DispatchQueue) {
        self.session = session
        self.delegate = delegate
        self.delegateQueue = delegateQueue
    }

    /// Called on the tunnel queue by the session once the stream exists (or failed to).
    func opened(streamID: Int32) {
        self.streamID = streamID
    }

    func send(_ bytes: [UInt8]) {
        self.onTunnel { connection in connection.sendData(streamID: self.streamID, bytes) }
    }

    func end() {
        self.onTunnel { connection in connection.endStream(streamID: self.streamID) }
    }

    func consume(_ count: Int) {
        self.onTunnel { connection in connection.consume(streamID: self.streamID, count: count) }
    }

    /// The user went away: reset the stream so the agent aborts the backend request.
    func cancel() {
        self.onTunnel { connection in
            self.isClosed = true
            connection.reset(streamID: self.streamID)
            self.session.streamFinished()
        }
    }

    private func onTunnel(_ body: @escaping @Sendable (HTTP2Connection) -> Void) {
        self.session.queue.async {
            guard !self.isClosed, self.streamID > 0, let connection = self.session.connection else { return }
            body(connection)
        }
    }

    /// Events handed to a user connection's queue and not yet delivered, across every stream: a draining
    /// controller waits for it to reach zero, so a response the tunnel finished still reaches its user.
    static var undeliveredEventCount: Int { Self.undelivered.load(ordering: .relaxed) }
    private static let undelivered = Atomic<Int>(0)

    private func toDelegate(_ event: Event) {
        Self.undelivered.add(1, ordering: .relaxed)
        let schedule = self.outbox.withLock { outbox in
            outbox.events.append(event)
            defer { outbox.isScheduled = true }
            return !outbox.isScheduled
        }
        if schedule { self.delegateQueue.async { self.deliver() } }
    }

    /// On `delegateQueue`: hands the delegate everything queued so far.
    private func deliver() {
        let events = self.outbox.withLock { outbox in
            outbox.isScheduled = false
            defer { outbox.events = [] }
            return outbox.events
        }
        defer { Self.undelivered.subtract(events.count, ordering: .relaxed) }
        for event in events {
            guard let delegate = self.delegate else { return }
            switch event {
            case .response(let headers, let endStream):
                delegate.tunnelStream(self, didReceiveResponse: headers, endStream: endStream)
            case .data(let bytes): delegate.tunnelStream(self, didReceiveData: bytes)
            case .end: delegate.tunnelStreamDidEnd(self)
            case .drained(let count): delegate.tunnelStream(self, didDrain: count)
            case .closed(let errorCode):
                self.delegate = nil
                delegate.tunnelStream(self, didClose: errorCode)
            }
        }
    }

    /// Fails the stream before it reached the tunnel.
    func refuse() {
        self.streamDidClose(errorCode: HTTP2ErrorCode.refusedStream)
    }
}

extension TunnelStream: HTTP2StreamHandler {
    func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool) {
        self.toDelegate(.response(headers, endStream: endStream))
    }

    func streamDidReceiveData(_ bytes: [UInt8]) {
        self.session.countBytes(fromAgent: bytes.count)
        self.toDelegate(.data(bytes))
    }

    func streamDidReceiveEnd() {
        self.toDelegate(.end)
    }

    func streamDidDrain(_ count: Int) {
        self.session.countBytes(toAgent: count)
        self.toDelegate(.drained(count))
    }

    func streamDidClose(errorCode: UInt32) {
        let wasClosed = self.isClosed
        self.isClosed = true
        if !wasClosed { self.session.streamFinished() }
        self.toDelegate(.closed(errorCode))
    }
}

// Tunnel-side state is touched only on the session's queue, the delegate only on `delegateQueue`.
extension TunnelStream: @unchecked Sendable {}
