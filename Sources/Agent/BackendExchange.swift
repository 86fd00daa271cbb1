import Foundation
import Tunnel

/// One tunnel stream carried out against a backend over HTTP/1.1: request and response bodies stream through,
/// an upgrade turns the stream into raw bytes both ways. Lives on the tunnel's queue, like the backend connection.
final class BackendExchange {
    private let streamID: Int32
    private let tunnel: HTTP2Connection
    private let service: BackendService
    private let requestID: String
    private let method: String
    private let isUpgrade: Bool
    private var backend: Connection?
    private var parser = HTTP1Parser(kind: .response)
    /// Request bytes waiting for the backend to connect.
    private var pendingWrites: [[UInt8]] = []
    private var isChunkedRequest = false
    private var requestEnded = false
    /// Body bytes written to the backend, acknowledged on the tunnel once the backend's socket took them.
    private var ledger = FlushLedger<BackendExchange>()
    private var responseStarted = false
    private var upgraded = false
    private var finished = false
    private var backendPaused = false
    private var status: Int?
    private let startedAt = DispatchTime.now()
    private static let highWater = 256 * 1024

    private let metrics: AgentMetrics

    init(streamID: Int32, tunnel: HTTP2Connection, service: BackendService, headers: [HTTPField], endStream: Bool,
         metrics: AgentMetrics, pool: BackendPool) {
        self.metrics = metrics
        self.pool = pool
        self.hasRequestBody = !endStream
        self.streamID = streamID
        self.tunnel = tunnel
        self.service = service
        var credentials: [(String, String)] = []
        self.headerSetupError = nil
        do {
            credentials = try service.credentialHeaders()
        } catch {
            self.headerSetupError = "service \(service.key): cannot read its credentials: \(error)"
        }
        let head = BackendRequestHead(tunnelFields: headers, endStream: endStream, host: service.host,
                                      port: service.port, basePath: service.basePath,
                                      impersonate: service.definition.impersonate, credentials: credentials)
        self.method = head.method
        self.requestID = head.requestID
        self.isUpgrade = head.upgrade != nil
        self.isChunkedRequest = head.isChunked
        self.requestEnded = endStream
        self.parser.expectResponse(toMethod: head.method)
        if head.target == nil {
            self.requestRefusal = "request target \(head.path) is not a path inside service \(service.key)"
        }
        self.requestHead = head.bytes
        self.pendingWrites.append(self.requestHead)
        self.ledger.record(written: self.pendingWrites[0].count, body: 0, for: nil)
        if self.isChunkedRequest && endStream {
            self.pendingWrites.append(HTTP1Serializer.lastChunk)
            self.ledger.record(written: HTTP1Serializer.lastChunk.count, body: 0, for: nil)
        }
    }

    private var headerSetupError: String?
    /// Set when the target would leave the service's base path: answered 400, never sent.
    private var requestRefusal: String?
    private let pool: BackendPool
    /// The connection came from the pool: if it turns out stale before any response, a bodyless request is
    /// retried once on a fresh connection.
    private var isReusedConnection = false
    private let requestHead: [UInt8]
    private let hasRequestBody: Bool

    /// Whether the backend closing the connection now means a stale pooled connection, to be replaced by a fresh one
    /// (once: the retry's connection is not a reused one).
    private var mayRetryOnFreshConnection: Bool {
        Self.mayRetryOnFreshConnection(isReused: self.isReusedConnection, responseStarted: self.responseStarted,
                                       hasRequestBody: self.hasRequestBody)
    }

    /// A request is retried on a fresh connection only when it went out on a pooled one, nothing of the response
    /// came back (so the backend processed none of it) and it has no body (the body is streamed, not kept, so it
    /// could not be sent again).
    static func mayRetryOnFreshConnection(isReused: Bool, responseStarted: Bool, hasRequestBody: Bool) -> Bool {
        isReused && !responseStarted && !hasRequestBody
    }

    /// Connects to the backend; failures answer the stream with 502.
    func start() {
        if let requestRefusal {
            self.fail(status: 400, requestRefusal)
            return
        }
        if let headerSetupError {
            self.fail(status: 502, headerSetupError)
            return
        }
        if !self.isUpgrade, let connection = self.pool.take(self.service.key) {
            self.isReusedConnection = true
            self.backend = connection
            connection.delegate = self
            self.connectionDidBecomeActive(connection)
            return
        }
        self.dial()
    }

    /// Resolves the backend's name off the tunnel's loop, then connects on it.
    private func dial() {
        Resolver.resolve(host: self.service.host, port: self.service.port, deliverOn: self.tunnel.queue) { result in
            self.connect(result)
        }
    }

    private func connect(_ resolved: Result<[SocketAddress], Error>) {
        guard !self.finished else { return }  // cancelled while the name was being looked up
        do {
            guard let address = try resolved.get().first else {
                throw ConnectionError.io(IOError(errno: EHOSTUNREACH, call: "resolve"))
            }
            let connection = try Connection.connect(to: address, tls: self.service.tls,
                                                    serverName: self.service.host, queue: self.tunnel.queue)
            self.backend = connection
            connection.start(delegate: self)
        } catch {
            self.failUnreachable(error, isDialFailure: true)
        }
    }

    /// Answers 502 ServiceUnavailable for a backend that cannot be reached, or 504 Timeout when connecting or its
    /// TLS handshake timed out.
    private func failUnreachable(_ error: any Error, isDialFailure: Bool) {
        if case .timedOut? = error as? ConnectionError {
            self.fail(status: 504, reason: .timeout, "service \(self.service.key) is unreachable: \(error)",
                      isDialFailure: isDialFailure)
        } else {
            self.fail(status: 502, reason: .serviceUnavailable, "service \(self.service.key) is unreachable: \(error)",
                      isDialFailure: isDialFailure)
        }
    }

    /// Answers the stream with an error (or resets it once the response started). A failure to reach the service
    /// is logged at most once per interval per service, with a count: while it is down, every request would say
    /// the same.
    private func fail(status: Int, reason: ErrorResponse.Reason? = nil, _ message: String, isDialFailure: Bool = false) {
        guard !self.finished else { return }
        if isDialFailure {
            self.service.unreachableLog.record(.warning, "backend request failed", key: "dial", [
                "request": self.requestID, "service": self.service.key, "error": message,
            ])
        } else {
            Log.warning("backend request failed", ["request": self.requestID, "service": self.service.key,
                                                    "error": message])
        }
        self.metrics.requestFinished(serviceType: self.service.definition.type, code: status,
                                     seconds: self.startedAt.secondsElapsed)
        if self.responseStarted {
            self.finished = true
            self.tunnel.reset(streamID: self.streamID, errorCode: HTTP2ErrorCode.internalError)
        } else {
            self.responseStarted = true
            self.finished = true
            let error = ErrorResponse(status: status, reason: reason, message: message,
                                      serviceType: self.service.definition.type, requestID: self.requestID)
            self.tunnel.answer(streamID: self.streamID, with: error,
                               adding: [HTTPField(TunnelProtocol.errorHeader, "1")])
        }
        self.backend?.close()
    }

    private func writeToBackend(_ bytes: [UInt8], body: Int) {
        self.ledger.record(written: bytes.count, body: body, for: self)
        if let backend = self.backend, backend.isActive {
            backend.write(bytes)
        } else {
            self.pendingWrites.append(bytes)
        }
    }
}

extension BackendExchange: HTTP2StreamHandler {
    func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool) {
        // Trailers from the controller: ignored, but they may end the request.
        if endStream { self.streamDidReceiveEnd() }
    }

    func streamDidReceiveData(_ bytes: [UInt8]) {
        if self.isChunkedRequest && !self.upgraded {
            bytes.withUnsafeBytes { self.writeToBackend(HTTP1Serializer.chunk($0), body: bytes.count) }
        } else {
            self.writeToBackend(bytes, body: bytes.count)
        }
    }

    func streamDidReceiveEnd() {
        Log.debug("controller ended the request body", ["request": self.requestID, "upgraded": "\(self.upgraded)"])
        guard !self.requestEnded else { return }
        self.requestEnded = true
        if self.upgraded {
            self.backend?.shutdownOutput()
        } else if self.isChunkedRequest {
            self.writeToBackend(HTTP1Serializer.lastChunk, body: 0)
        }
    }

    func streamDidDrain(_ count: Int) {
        if self.backendPaused, self.tunnel.queuedByteCount(streamID: self.streamID) < Self.highWater / 2 {
            self.backendPaused = false
            self.backend?.resumeReading()
        }
    }

    func streamDidClose(errorCode: UInt32) {
        if errorCode != 0 && !self.finished {
            Log.info("request cancelled by the controller", ["request": self.requestID, "service": self.service.key])
        }
        self.finished = true
        self.backend?.close()
    }
}

extension BackendExchange: ConnectionDelegate {
    func connectionDidBecomeActive(_ connection: Connection) {
        if !self.isReusedConnection {
            let unreported = self.service.unreachableLog.recovered(key: "dial")
            if unreported > 0 {
                Log.info("service reachable again", ["service": self.service.key, "count": "\(unreported)"])
            }
        }
        let writes = self.pendingWrites
        self.pendingWrites = []
        // A bodyless request is complete: send it now rather than at the end of the turn.
        for (index, bytes) in writes.enumerated() {
            connection.write(bytes, more: !(self.requestEnded && index == writes.count - 1))
        }
    }

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        if self.upgraded {
            self.forwardToTunnel(Array(bytes))
            return
        }
        self.parser.feed(bytes)
        self.drainParser()
    }

    private func drainParser() {
        do {
            while !self.finished, let event = try self.parser.next() {
                switch event {
                case .responseHead(let head):
                    self.startResponse(head)
                    if self.upgraded {
                        let rest = self.parser.takeRemainingBytes()
                        if !rest.isEmpty { self.forwardToTunnel(rest) }
                        return
                    }
                case .body(let bytes):
                    self.forwardToTunnel(bytes)
                case .end:
                    self.finished = true
                    self.tunnel.endStream(streamID: self.streamID)
                    self.logDone()
                    self.releaseBackendIfReusable()
                case .requestHead:
                    break
                }
            }
        } catch {
            self.fail(status: 502, "service \(self.service.key) sent a malformed response: \(error)")
        }
    }

    /// After a complete response to a complete request on a keep-alive connection, the connection goes back to
    /// the pool instead of closing.
    private func releaseBackendIfReusable() {
        guard let backend = self.backend, self.requestEnded, !self.upgraded, self.parser.keepAlive,
              self.parser.bufferedByteCount == 0, backend.outboundByteCount == 0, !backend.isClosed
        else { return }
        self.ledger.removeAll { exchange, body in exchange.tunnel.consume(streamID: exchange.streamID, count: body) }
        self.backend = nil
        if self.backendPaused {
            // Paused for this stream's backpressure; the next request on it must be able to read its answer.
            self.backendPaused = false
            backend.resumeReading()
        }
        self.pool.give(backend, to: self.service.key, limit: self.service.definition.maxIdleConnections)
    }

    private func startResponse(_ head: HTTPResponseHead) {
        if head.status >= 100 && head.status < 200 && head.status != 101 { return }
        self.responseStarted = true
        var fields = [HTTPField(":status", head.status == 101 ? "200" : "\(head.status)")]
        if head.status == 101 {
            self.upgraded = true
            fields.append(HTTPField(TunnelProtocol.statusHeader, "101"))
            // The user may have half-closed before the backend switched: pass that on now.
            if self.requestEnded { self.backend?.shutdownOutput() }
        }
        fields += HeaderRules.fields(of: head.headers, where: HeaderRules.responseForwards)
        let noBody = self.method == "HEAD" || head.status == 204 || head.status == 304
        self.tunnel.respond(streamID: self.streamID, headers: fields, hasBody: !noBody)
        if noBody {
            self.finished = true
            self.logDone(status: head.status)
        }
        self.status = head.status
    }

    private func forwardToTunnel(_ bytes: [UInt8]) {
        self.tunnel.sendData(streamID: self.streamID, bytes)
        if !self.backendPaused, self.tunnel.queuedByteCount(streamID: self.streamID) > Self.highWater {
            self.backendPaused = true
            self.backend?.pauseReading()
        }
    }

    func connectionDidReceiveEOF(_ connection: Connection) {
        Log.debug("backend closed its side", ["request": self.requestID, "upgraded": "\(self.upgraded)"])
        if self.upgraded {
            self.tunnel.endStream(streamID: self.streamID)
            if self.requestEnded { connection.close() }
            return
        }
        if self.mayRetryOnFreshConnection {
            connection.close()  // a stale pooled connection: `connectionDidClose` dials again
            return
        }
        do {
            if let event = try self.parser.finish(), case .end = event, !self.finished {
                self.finished = true
                self.tunnel.endStream(streamID: self.streamID)
                self.logDone()
            }
        } catch {
            self.fail(status: 502, "service \(self.service.key) closed the connection mid-response: \(error)")
        }
        if !self.finished, !self.mayRetryOnFreshConnection {
            self.fail(status: 502, "service \(self.service.key) closed the connection without a response")
        }
        connection.close()
    }

    func connection(_ connection: Connection, didFlush count: Int) {
        self.ledger.flushed(count) { exchange, body in exchange.tunnel.consume(streamID: exchange.streamID, count: body) }
    }

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        if self.mayRetryOnFreshConnection, !self.finished {
            // The backend had closed the idle connection as we reused it: nothing was processed, so dial afresh.
            self.isReusedConnection = false
            self.backend = nil
            self.ledger.removeAll { _, _ in }
            self.pendingWrites = [self.requestHead]
            self.ledger.record(written: self.requestHead.count, body: 0, for: nil)
            Log.debug("pooled backend connection was stale; dialling again", ["request": self.requestID])
            self.dial()
            return
        }
        if let error, !self.finished {
            self.failUnreachable(error, isDialFailure: !connection.isActive)
        } else if self.upgraded && !self.finished {
            self.finished = true
            self.tunnel.endStream(streamID: self.streamID)
        }
        // Body bytes the backend never took still hold tunnel window: give it back.
        self.ledger.removeAll { exchange, body in exchange.tunnel.consume(streamID: exchange.streamID, count: body) }
        self.backend = nil
    }

    private func logDone(status: Int? = nil) {
        self.metrics.requestFinished(serviceType: self.service.definition.type, code: status ?? self.status ?? 0,
                                     seconds: self.startedAt.secondsElapsed)
        Log.info("request done", [
            "request": self.requestID, "service": self.service.key, "method": self.method,
            "status": "\(status ?? self.status ?? 0)",
            "ms": Log.milliseconds(since: self.startedAt),
        ])
    }
}

// Confined to the tunnel connection's queue, like the backend connection it drives; the resolver answers there too.
extension BackendExchange: @unchecked Sendable {}
