import CNGHTTP2
import Dispatch
import Foundation

/// Receives one stream's events, on the connection's queue.
package protocol HTTP2StreamHandler: AnyObject {
    func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool)
    /// Body bytes; acknowledge them with `HTTP2Connection.consume` once written onward.
    func streamDidReceiveData(_ bytes: [UInt8])
    func streamDidReceiveEnd()
    /// `count` queued outbound body bytes reached the kernel (not merely nghttp2's frames); the producer may send
    /// more, and bytes it relayed from another hop may be acknowledged there.
    func streamDidDrain(_ count: Int)
    /// The stream is gone; 0 after a clean finish, else the reset code.
    func streamDidClose(errorCode: UInt32)
}

/// A stream whose answer is already sent: whatever else arrives is dropped (its window returns when it closes).
package final class DiscardingStream: HTTP2StreamHandler {
    package init() {}
    package func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool) {}
    package func streamDidReceiveData(_ bytes: [UInt8]) {}
    package func streamDidReceiveEnd() {}
    package func streamDidDrain(_ count: Int) {}
    package func streamDidClose(errorCode: UInt32) {}
}

/// Connection-level events, on the connection's queue.
package protocol HTTP2ConnectionDelegate: AnyObject {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection)
    /// A peer-initiated stream (server role) sent its request headers; return who handles it, or nil to refuse.
    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler?
    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval)
    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32)
    /// This end sent GOAWAY: asked for with `goAway()`, or decided by nghttp2 (a flood guard, a protocol error).
    /// Either way the session takes no new streams; the ones in flight may finish.
    func http2Connection(_ connection: HTTP2Connection, didSendGoAway errorCode: UInt32)
    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?)
    /// The last open stream closed: the connection has nothing in progress (idle timeouts start here).
    func http2ConnectionDidBecomeIdle(_ connection: HTTP2Connection)
}

extension HTTP2ConnectionDelegate {
    /// Tunnels have no idle timeout: by default nothing happens.
    package func http2ConnectionDidBecomeIdle(_ connection: HTTP2Connection) {}
}

extension HTTP2ConnectionDelegate {
    /// Most owners need not tell their own GOAWAY apart from a closing connection.
    package func http2Connection(_ connection: HTTP2Connection, didSendGoAway errorCode: UInt32) {}
}

/// Liveness settings: PING every `interval`; no answer within `timeout` means the peer is dead.
package struct PingPolicy: Sendable {
    package var interval: TimeInterval
    package var timeout: TimeInterval

    package init(interval: TimeInterval = 10, timeout: TimeInterval = 30) {
        self.interval = interval
        self.timeout = timeout
    }
}

/// Drives an `HTTP2Session` over a `Connection`: bytes in and out, streams to handlers, PING liveness.
package final class HTTP2Connection {
    package let connection: Connection
    package let session: HTTP2Session
    package var queue: DispatchQueue { self.connection.queue }
    /// Held strongly until the connection closes: the delegate usually lives only as long as the connection.
    package var delegate: HTTP2ConnectionDelegate?
    private var handlers: [Int32: HTTP2StreamHandler] = [:]
    /// Body bytes framed into each write, reported to their stream's handler once the socket took that write.
    private var drainLedger = FlushLedger<AnyObject>()
    /// Whether `handlers` was non-empty when last looked at, to tell the delegate when the last stream closes.
    private var hadStreams = false
    private var isFlushScheduled = false
    private var pingTimer: DispatchSourceTimer?
    private var lastPingAnswer = DispatchTime.now()
    private let pingPolicy: PingPolicy?
    private let startedAt = DispatchTime.now()
    /// How far the socket's queue may grow before we stop pulling frames from nghttp2.
    private let socketHighWater = 512 * 1024
    package private(set) var isClosed = false

    /// Active streams, for least-busy routing.
    package var activeStreamCount: Int { self.handlers.count }

    package init(connection: Connection, role: HTTP2Role, settings: HTTP2Settings, ping: PingPolicy?) throws {
        self.connection = connection
        self.session = try HTTP2Session(role: role, settings: settings)
        self.pingPolicy = ping
    }

    /// Starts the connection and, when active, PING liveness. Call on the connection's queue.
    package func start(delegate: HTTP2ConnectionDelegate) {
        self.delegate = delegate
        if self.connection.isActive {
            self.connection.delegate = self
            self.activated()
        } else {
            self.connection.start(delegate: self)
        }
    }

    private func activated() {
        self.scheduleFlush()
        if let policy = self.pingPolicy {
            let timer = DispatchSource.makeTimerSource(queue: self.queue)
            timer.schedule(deadline: .now() + policy.interval, repeating: policy.interval)
            timer.setEventHandler { [weak self] in self?.pingTick(policy) }
            timer.resume()
            self.pingTimer = timer
        }
        self.delegate?.http2ConnectionDidBecomeActive(self)
    }

    private func pingTick(_ policy: PingPolicy) {
        let silentFor = Double(DispatchTime.now().uptimeNanoseconds - self.lastPingAnswer.uptimeNanoseconds) / 1e9
        if silentFor > policy.timeout {
            self.close(error: .timedOut("no PING answer for \(Int(silentFor))s"))
            return
        }
        self.session.ping(payload: DispatchTime.now().uptimeNanoseconds)
        self.scheduleFlush()
    }

    // MARK: Streams

    /// Opens a stream (client role) and routes its events to `handler`.
    package func openStream(headers: [HTTPField], hasBody: Bool, handler: HTTP2StreamHandler) throws -> Int32 {
        dispatchPrecondition(condition: .onQueue(self.queue))
        let streamID = try self.session.submitRequest(headers, hasBody: hasBody)
        self.handlers[streamID] = handler
        self.hadStreams = true
        self.scheduleFlush()
        return streamID
    }

    /// Answers a peer-initiated stream (server role).
    package func respond(streamID: Int32, headers: [HTTPField], hasBody: Bool) {
        do {
            try self.session.submitResponse(streamID: streamID, headers, hasBody: hasBody)
        } catch {
            Log.warning("submitting a response failed", ["stream": "\(streamID)", "error": "\(error)"])
            self.session.reset(streamID: streamID, errorCode: NGHTTP2_INTERNAL_ERROR.rawValue)
        }
        self.scheduleFlush()
    }

    /// Answers a stream with a whole error response (`ErrorResponse`), `extra` header fields added.
    package func answer(streamID: Int32, with error: ErrorResponse, adding extra: [HTTPField] = []) {
        self.respond(streamID: streamID, headers: error.http2Headers(adding: extra), hasBody: true)
        self.sendData(streamID: streamID, error.body)
        self.endStream(streamID: streamID)
    }

    package func sendData(streamID: Int32, _ bytes: [UInt8]) {
        self.session.sendData(streamID: streamID, bytes)
        self.scheduleFlush()
    }

    package func endStream(streamID: Int32) {
        self.session.endStream(streamID: streamID)
        self.scheduleFlush()
    }

    package func queuedByteCount(streamID: Int32) -> Int {
        self.session.queuedByteCount(streamID: streamID)
    }

    package func consume(streamID: Int32, count: Int) {
        self.session.consume(streamID: streamID, count: count)
        self.scheduleFlush()
    }

    /// Resets a stream; its handler hears `streamDidClose` no more (it asked for this).
    package func reset(streamID: Int32, errorCode: UInt32 = NGHTTP2_CANCEL.rawValue) {
        self.handlers[streamID] = nil
        self.session.reset(streamID: streamID, errorCode: errorCode)
        self.scheduleFlush()
        self.noticeIdle()
    }

    /// Sends GOAWAY: the peer opens no new streams here; open ones may finish.
    package func goAway() {
        self.session.goAway()
        self.scheduleFlush()
    }

    // MARK: I/O

    private func scheduleFlush() {
        guard !self.isFlushScheduled, !self.isClosed else { return }
        self.isFlushScheduled = true
        self.queue.async { [self] in
            self.isFlushScheduled = false
            self.flush()
        }
    }

    private func flush() {
        guard !self.isClosed, self.connection.isActive else { return }
        while self.connection.outboundByteCount < self.socketHighWater {
            var output = [UInt8]()
            output.reserveCapacity(64 * 1024)
            let events: [HTTP2Event]
            do {
                events = try self.session.send(into: &output, limit: 256 * 1024)
            } catch {
                self.close(error: .protocolViolation("\(error)"))
                return
            }
            // Already one batch per turn (`scheduleFlush`): no cork.
            if !output.isEmpty {
                self.recordDrains(events, written: output.count)
                self.connection.write(output, more: false)
            }
            self.dispatch(events)
            if output.isEmpty { break }
        }
        if !self.session.isAlive {
            self.close(error: nil)
        }
    }

    /// Notes which streams' body bytes are in a write of `written` bytes about to be handed to the connection.
    private func recordDrains(_ events: [HTTP2Event], written: Int) {
        var unrecorded = written
        for case .drained(let streamID, let count) in events {
            guard let handler = self.handlers[streamID] else { continue }
            self.drainLedger.record(written: unrecorded, body: count, for: handler)
            unrecorded = 0
        }
        if unrecorded > 0 { self.drainLedger.record(written: unrecorded, body: 0, for: nil) }
    }

    private func dispatch(_ events: [HTTP2Event]) {
        for event in events {
            switch event {
            case .headers(let streamID, let headers, let endStream):
                if let handler = self.handlers[streamID] {
                    handler.streamDidReceiveHeaders(headers, endStream: endStream)
                } else if self.session.role == .server {
                    if let handler = self.delegate?.http2Connection(
                        self, didOpenStream: streamID, headers: headers, endStream: endStream)
                    {
                        self.handlers[streamID] = handler
                        self.hadStreams = true
                    } else {
                        self.session.reset(streamID: streamID, errorCode: NGHTTP2_REFUSED_STREAM.rawValue)
                    }
                }
            case .data(let streamID, let bytes):
                if let handler = self.handlers[streamID] {
                    handler.streamDidReceiveData(bytes)
                } else {
                    self.session.consume(streamID: streamID, count: bytes.count)
                }
            case .endStream(let streamID):
                self.handlers[streamID]?.streamDidReceiveEnd()
            case .drained:
                break  // recorded in `drainLedger` with the write that carries them
            case .streamClosed(let streamID, let errorCode):
                self.handlers.removeValue(forKey: streamID)?.streamDidClose(errorCode: errorCode)
            case .pingAcknowledged(let sentAt):
                self.lastPingAnswer = .now()
                let now = DispatchTime.now().uptimeNanoseconds
                if sentAt <= now, sentAt >= self.startedAt.uptimeNanoseconds {
                    self.delegate?.http2Connection(self, didMeasurePing: Double(now - sentAt) / 1e9)
                }
            case .goAway(let lastStreamID, _):
                self.delegate?.http2Connection(self, didReceiveGoAway: lastStreamID)
            case .headerListTooLarge(let streamID):
                self.refuseOversizedHeaders(streamID: streamID)
            case .goAwaySent(let errorCode):
                self.delegate?.http2Connection(self, didSendGoAway: errorCode)
            }
        }
        self.noticeIdle()
    }

    /// Tells the delegate when the last open stream has gone.
    private func noticeIdle() {
        let hasStreams = !self.handlers.isEmpty
        defer { self.hadStreams = hasStreams }
        if self.hadStreams && !hasStreams { self.delegate?.http2ConnectionDidBecomeIdle(self) }
    }

    /// Sends GOAWAY (no error) and closes once it is written, or after `timeout`: for a connection that idled
    /// past its limit. Open streams, if any, end with it.
    package func goAwayAndClose(timeout: TimeInterval = 1) {
        guard !self.isClosed else { return }
        self.session.goAway()
        self.flush()
        self.isClosed = true  // nothing more is framed; `connectionDidClose` still tells the handlers
        self.pingTimer?.cancel()
        self.pingTimer = nil
        self.connection.closeAfterFlush(timeout: timeout)
    }

    /// A header block over the limit: a new request is answered 431; anything else (a response, trailers) resets
    /// its stream, whose handler hears the reset. Either way the connection and its other streams go on.
    private func refuseOversizedHeaders(streamID: Int32) {
        let limit = self.session.headerListLimit
        Log.warning("HTTP/2 header list too large", ["peer": self.peerDescription, "stream": "\(streamID)",
                                                     "limit": "\(limit)"])
        if let handler = self.handlers.removeValue(forKey: streamID) {
            self.session.reset(streamID: streamID, errorCode: NGHTTP2_PROTOCOL_ERROR.rawValue)
            handler.streamDidClose(errorCode: NGHTTP2_PROTOCOL_ERROR.rawValue)
        } else if self.session.role == .server {
            self.handlers[streamID] = DiscardingStream()
            let error = ErrorResponse(status: 431, message: "request header list larger than \(limit) bytes",
                                      serviceType: nil)
            self.answer(streamID: streamID, with: error)
        } else {
            self.session.reset(streamID: streamID, errorCode: NGHTTP2_PROTOCOL_ERROR.rawValue)
        }
    }

    private var peerDescription: String { self.connection.peerAddress.map { "\($0)" } ?? "?" }

    /// Closes the connection; every open stream's handler hears it closed.
    package func close(error: ConnectionError?) {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.pingTimer?.cancel()
        self.pingTimer = nil
        self.connection.close(error: error)
    }

    private func finish(error: ConnectionError?) {
        self.isClosed = true
        self.pingTimer?.cancel()
        self.pingTimer = nil
        let handlers = self.handlers
        self.handlers = [:]
        for (_, handler) in handlers.sorted(by: { $0.key < $1.key }) {
            handler.streamDidClose(errorCode: NGHTTP2_CANCEL.rawValue)
        }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.http2ConnectionDidClose(self, error: error)
    }
}

extension HTTP2Connection: ConnectionDelegate {
    package func connectionDidBecomeActive(_ connection: Connection) {
        self.activated()
    }

    package func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        let events: [HTTP2Event]
        do {
            events = try self.session.receive(bytes)
        } catch {
            self.failFatally(error)
            return
        }
        self.lastPingAnswer = .now()
        self.dispatch(events)
        self.scheduleFlush()
    }

    /// nghttp2 gave up on the connection (bad preface, flood, callback failure): whatever it still has queued
    /// goes out, then a GOAWAY of our own that says why, since after a fatal error nghttp2 itself may send none.
    /// Logged here once; the close that follows is not logged again as an error.
    private func failFatally(_ error: Error) {
        Log.warning("HTTP/2 protocol error; closing the connection", ["peer": self.peerDescription,
                                                                       "error": "\(error)"])
        var output = [UInt8]()
        _ = try? self.session.send(into: &output)
        let code = (error as? HTTP2Error)?.code == Int(NGHTTP2_ERR_FLOODED.rawValue)
            ? NGHTTP2_ENHANCE_YOUR_CALM.rawValue : NGHTTP2_PROTOCOL_ERROR.rawValue
        output += HTTP2Frames.goAway(lastStreamID: self.session.lastProcessedStreamID, errorCode: code,
                                     debugData: "\(error)")
        self.isClosed = true
        self.pingTimer?.cancel()
        self.pingTimer = nil
        self.connection.write(output)
        self.connection.closeAfterFlush(timeout: 1)
    }

    package func connectionDidReceiveEOF(_ connection: Connection) {
        // After `goAwayAndClose` the peer's EOF is the answer awaited: close now rather than at the timeout.
        if self.isClosed { connection.close() } else { self.close(error: nil) }
    }

    package func connection(_ connection: Connection, didFlush count: Int) {
        self.drainLedger.flushed(count) { handler, body in (handler as? HTTP2StreamHandler)?.streamDidDrain(body) }
        if connection.outboundByteCount < self.socketHighWater / 2 { self.scheduleFlush() }
    }

    package func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        self.finish(error: error)
    }
}

// Confined to the connection's queue, like the Connection it drives.
extension HTTP2Connection: @unchecked Sendable {}
