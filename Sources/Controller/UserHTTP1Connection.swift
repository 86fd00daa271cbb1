import Dispatch
import Foundation
import Tunnel

/// A user's HTTP/1.1 connection on the service listener: one request at a time, each carried over a tunnel
/// stream; an upgrade (WebSocket, SPDY) turns the connection into raw bytes both ways.
final class UserHTTP1Connection {
    private let connection: Connection
    private let context: ControllerContext
    private var parser: HTTP1Parser
    private var stream: TunnelStream? {
        didSet {
            // The request's tunnel stream is over for this connection: a debug session forgets it.
            if oldValue !== self.stream, let ended = self.streamEnded {
                self.streamEnded = nil
                ended()
            }
        }
    }
    /// Called when `stream` ends, for a stream registered with its debug session.
    private var streamEnded: (@Sendable () -> Void)?
    private var exchange: Exchange?
    private var isReadingPausedForBackpressure = false
    /// Response body bytes written to the user, acknowledged on their tunnel stream once the socket took them.
    private var ledger = FlushLedger<TunnelStream>()
    /// Bytes given to the stream and not yet drained to the tunnel.
    private var requestBytesInFlight = 0
    private static let highWater = 512 * 1024
    /// Head and idle deadlines; `timer` fires at the one in force.
    private var timeouts: HTTP1ServerTimeouts
    private var timer: ConnectionTimer?
    private var armedDeadline: UInt64?

    /// The request in progress.
    private struct Exchange {
        var requestID: String
        var route: Route
        var method: String
        var upgrade: String?
        var keepAlive: Bool
        var started = DispatchTime.now()
        var requestEnded = false
        var responseStarted = false
        var responseEnded = false
        var upgraded = false
        var chunkedResponse = false
        /// Body bytes still due by the response's Content-Length; at 0 the user has it all.
        var responseBytesDue: Int?
        var status = 0 {
            didSet { self.audit?.status = self.status }
        }
        /// The gateway audit of the stream: its end line is written when the exchange is let go.
        var audit: StreamAudit?
    }

    /// `acceptedAt` (monotonic nanoseconds) starts the first request head's timeout.
    init(connection: Connection, context: ControllerContext, acceptedAt: UInt64) {
        self.connection = connection
        self.context = context
        self.parser = HTTP1Parser(kind: .request, maxHeaderBytes: context.configuration.maxHeaderBytes)
        self.timeouts = HTTP1ServerTimeouts(
            headTimeout: UInt64(context.configuration.requestHeadTimeoutSeconds * 1e9),
            idleTimeout: UInt64(context.configuration.idleTimeoutSeconds * 1e9), acceptedAt: acceptedAt)
    }

    /// Takes over an active connection (TLS done, ALPN chose HTTP/1.1).
    func start() {
        self.connection.delegate = self
        self.timer = ConnectionTimer(queue: self.connection.queue) { [weak self] in self?.timerFired() }
        self.updateTimeouts()
    }

    private var peer: String { self.connection.peerAddress.map { "\($0)" } ?? "?" }

    // MARK: Requests

    private func processInput() {
        defer { self.updateTimeouts() }
        do {
            while (self.exchange == nil || !(self.exchange!.requestEnded)) && self.decision == nil {
                guard let event = try self.parser.next() else { return }
                switch event {
                case .requestHead(let head):
                    self.begin(head)
                    if self.exchange?.upgrade != nil {
                        // Everything after the head belongs to the upgraded protocol.
                        let rest = self.parser.takeRemainingBytes()
                        if !rest.isEmpty { self.sendRequestBytes(rest) }
                        return
                    }
                case .body(let bytes):
                    self.sendRequestBytes(bytes)
                case .end:
                    if var exchange = self.exchange {
                        exchange.requestEnded = true
                        self.exchange = exchange
                        self.stream?.end()
                        if self.collecting != nil { self.runCollected() }
                    }
                case .responseHead:
                    break
                }
            }
        } catch {
            let status: Int
            switch error as? HTTP1Error {
            case .headerTooLarge, .tooManyHeaders: status = 431
            case .unsupportedTransferEncoding: status = 501
            case .invalidVersion: status = 505
            default: status = 400
            }
            self.context.metrics.authFailure(reason: "malformed_request")
            Log.warning("malformed HTTP/1.1 request", ["peer": self.peer, "status": "\(status)", "error": "\(error)",
                                                       "request": self.exchange?.requestID ?? "-"])
            if self.exchange?.responseStarted == true {
                // Too late for an error response: the user's request is cut, and so is its stream.
                self.stream?.cancel()
                self.stream = nil
                self.exchange = nil
                self.connection.close()
                return
            }
            self.respondLocally(ErrorResponse(status: status, message: "malformed request: \(error)", serviceType: nil,
                                              requestID: self.exchange?.requestID), close: true)
        }
    }

    // MARK: Timeouts

    /// Moves the timeouts to what the connection is doing now and arms the timer for the deadline in force.
    private func updateTimeouts() {
        if self.exchange != nil {
            self.timeouts.requestStarted()
        } else {
            self.timeouts.exchangeFinished(at: DispatchTime.now().uptimeNanoseconds,
                                           hasBufferedBytes: self.parser.bufferedByteCount > 0)
        }
        let deadline = self.timeouts.deadline
        // Re-arm only for an earlier deadline: a timer armed for an earlier one fires, finds nothing expired and
        // re-arms for the deadline then in force, so requests on a kept-alive connection cost no timer work each.
        guard let deadline, let timer = self.timer else { return }
        if let armed = self.armedDeadline, armed <= deadline { return }
        self.armedDeadline = deadline
        timer.arm(at: deadline)
    }

    private func timerFired() {
        guard !self.connection.isClosed else { return }
        switch self.timeouts.expired(at: DispatchTime.now().uptimeNanoseconds) {
        case nil:
            // A deadline moved just as the old one fired: wait for the new one.
            self.armedDeadline = nil
            self.updateTimeouts()
        case .head:
            self.context.metrics.userConnectionTimedOut("request_head")
            Log.debug("request head timed out", ["peer": self.peer,
                                                  "seconds": "\(self.context.configuration.requestHeadTimeoutSeconds)"])
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "0")
            headers.add(name: "Connection", value: "close")
            self.connection.write(HTTP1Serializer.responseHead(HTTPResponseHead(status: 408, headers: headers)))
            self.connection.close(error: .timedOut("request head"))
        case .idle:
            self.context.metrics.userConnectionTimedOut("idle")
            Log.debug("idle connection closed", ["peer": self.peer])
            self.connection.close()
        }
    }

    // MARK: Exchanges

    private func begin(_ head: HTTPRequestHead) {
        let requestID = RandomID.request()
        let upgradeRequested = self.parser.isSwitchingProtocols ? head.headers[first: "upgrade"] : nil
        let hasBody = upgradeRequested != nil || head.headers.contains(name: "transfer-encoding")
            || (Int(head.headers[first: "content-length"] ?? "0") ?? 0) > 0
        self.exchange = Exchange(
            requestID: requestID, route: Route(agent: "-", serviceType: "-", serviceName: "-", user: "-"),
            method: head.method, upgrade: upgradeRequested, keepAlive: self.parser.keepAlive && upgradeRequested == nil)
        let request = UserRequest(http1: head, requestID: requestID, upgrade: upgradeRequested, hasBody: hasBody,
                                  peerCertificate: self.connection.tls?.peerCertificate,
                                  peerHost: self.connection.peerAddress?.host)
        self.decision = .deciding(requestID: requestID, pendingBytes: [])
        self.isDecidingInline = true
        let inline = self.context.pipeline.decide(request, deliverOn: self.connection.queue) { outcome in
            self.decided(outcome, request: request, method: head.method)
        }
        self.isDecidingInline = false
        if !inline, self.decision != nil {
            // Decided on a worker thread: read nothing more until the answer is back (bytes already read wait).
            self.connection.pauseReading()
        }
    }

    /// Carries out the pipeline's outcome for the request in progress; after an asynchronous decision, reading and
    /// parsing go on from where they stopped.
    private func decided(_ outcome: PipelineOutcome, request: UserRequest, method: String) {
        guard case .deciding(let requestID, let pendingBytes)? = self.decision, requestID == request.requestID,
              !self.connection.isClosed else { return }
        let wasAsynchronous = !self.isDecidingInline
        self.decision = nil
        let hasBody = request.hasBody
        defer {
            // Forwarded after a wait: read and parse on (a local answer resumed or closed the connection itself).
            if wasAsynchronous, self.exchange != nil {
                if !self.isReadingPausedForBackpressure { self.connection.resumeReading() }
                if self.exchange?.upgrade == nil { self.processInput() }
            }
        }
        switch outcome {
        case .refuse(let refusal):
            if let route = refusal.route { self.exchange?.route = route }
            self.context.record(refusal, requestID: requestID, peer: self.peer,
                                started: self.exchange?.started ?? .now())
            // A refusal before authentication closes the connection: nothing about its framing can be trusted.
            self.respondLocally(refusal.error, extra: refusal.extraHeaders,
                                close: hasBody || request.method == "CONNECT" || refusal.failureLabel == "malformed_request")
        case .respond(let response):
            self.respondLocally(response, close: hasBody)
        case .collect(let route):
            self.collecting = (route, pendingBytes.flatMap { $0 })
            if !hasBody { self.runCollected() }
        case .forward(let forward):
            self.exchange?.route = forward.route
            self.exchange?.audit = forward.audit
            Log.debug("request routed", ["request": requestID, "agent": forward.route.agent,
                                         "service": forward.route.serviceKey, "user": forward.route.user,
                                         "method": method, "session": forward.session.id])
            let stream = forward.session.openStream(headers: forward.fields, hasBody: hasBody, delegate: self,
                                                    delegateQueue: self.connection.queue)
            self.stream = stream
            if let onOpen = forward.onOpen {
                let queue = self.connection.queue
                self.streamEnded = onOpen { [self] in
                    queue.async {
                        stream.cancel()
                        guard self.stream === stream else { return }
                        Log.info("stream cut by its debug session", ["request": requestID])
                        self.exchange?.keepAlive = false
                        self.connection.close()
                    }
                }
            }
            if !hasBody { self.exchange?.requestEnded = true }
            for bytes in pendingBytes { self.sendRequestBytes(bytes) }
        }
    }

    /// The pipeline's decision on the request in progress, while it is being made: bytes of an upgraded
    /// connection that arrive meanwhile wait here.
    private enum Decision {
        case deciding(requestID: String, pendingBytes: [[UInt8]])
    }

    private var decision: Decision?
    /// A body route's body being read for the request in progress.
    private var collecting: (route: BodyRoute, body: [UInt8])?
    /// True while the pipeline is called: its answer then comes inline, before `decide` returns.
    private var isDecidingInline = false

    /// Refuses the request in progress once the tunnel failed it.
    private func refuse(status: Int, _ message: String) {
        guard let exchange = self.exchange else { return }
        let refusal = RequestRefusal(
            error: ErrorResponse(status: status, message: message, serviceType: exchange.route.serviceType,
                                 requestID: exchange.requestID),
            route: exchange.route)
        self.context.record(refusal, requestID: exchange.requestID, peer: self.peer, started: exchange.started)
        self.respondLocally(refusal.error, close: true)
    }

    /// Answers from the controller itself with an error; a tunnel stream already opened for the request is
    /// cancelled, so the agent and the backend let go of it too.
    private func respondLocally(_ error: ErrorResponse, extra: [HTTPField] = [], close: Bool) {
        self.stream?.cancel()
        let mustClose = close || !(self.exchange?.keepAlive ?? false)
        self.connection.write(error.http1Message(keepAlive: !mustClose, adding: extra))
        self.exchangeAnsweredLocally(close: mustClose)
    }

    /// Answers from a route the controller serves itself.
    private func respondLocally(_ response: LocalResponse, close: Bool) {
        let mustClose = close || !(self.exchange?.keepAlive ?? false)
        var headers = HTTPHeaders()
        for field in response.headers { headers.add(name: field.name, value: field.value) }
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        if mustClose { headers.add(name: "Connection", value: "close") }
        self.connection.write(HTTP1Serializer.responseHead(HTTPResponseHead(status: response.status, headers: headers)))
        if self.exchange?.method != "HEAD" { self.connection.write(response.body) }
        if let exchange = self.exchange {
            Log.info("request done", ["request": exchange.requestID, "method": exchange.method,
                                      "status": "\(response.status)", "served": "controller"])
        }
        self.exchangeAnsweredLocally(close: mustClose)
    }

    /// Runs the body route on a worker thread (reading paused), then answers on the connection's queue.
    private func runCollected() {
        guard let (route, body) = self.collecting, let requestID = self.exchange?.requestID else { return }
        self.collecting = nil
        self.connection.pauseReading()
        let queue = self.connection.queue
        BodyRoute.workers.async {
            let response = route.respond(body)
            queue.async {
                guard !self.connection.isClosed, self.exchange?.requestID == requestID else { return }
                self.respondLocally(response, close: false)
            }
        }
    }

    private func exchangeAnsweredLocally(close: Bool) {
        self.exchange = nil
        self.stream = nil
        if close {
            self.connection.pauseReading()
            self.connection.closeAfterFlush()
        } else {
            // Reading may have been paused for an asynchronous decision or backpressure; the next request may come.
            self.resumeReadingIfPaused()
            self.connection.resumeReading()
            self.processInput()
        }
    }

    private func sendRequestBytes(_ bytes: [UInt8]) {
        if case .deciding(let requestID, var pending)? = self.decision {
            pending.append(bytes)
            self.decision = .deciding(requestID: requestID, pendingBytes: pending)
            return
        }
        if let collecting = self.collecting {
            self.collecting!.body += bytes
            if collecting.body.count + bytes.count > collecting.route.limit {
                self.collecting = nil
                self.respondLocally(ErrorResponse(status: 413, message: "the body is larger than \(collecting.route.limit) bytes",
                                                  serviceType: nil, requestID: self.exchange?.requestID), close: true)
            }
            return
        }
        guard let stream = self.stream, !bytes.isEmpty else { return }
        self.exchange?.audit?.bytesIn += bytes.count
        stream.send(bytes)
        self.requestBytesInFlight += bytes.count
        if self.requestBytesInFlight > Self.highWater, !self.isReadingPausedForBackpressure {
            self.isReadingPausedForBackpressure = true
            self.context.metrics.flowBlockedStarted()
            self.connection.pauseReading()
        }
    }

    private func finishExchange() {
        guard let exchange = self.exchange else { return }
        self.recordDone(exchange)
        self.exchange = nil
        self.stream = nil
        self.requestBytesInFlight = 0
        if exchange.keepAlive && exchange.requestEnded {
            self.resumeReadingIfPaused()
            self.processInput()
        } else {
            self.connection.closeAfterFlush()
        }
    }

    /// Counts and logs a request whose response the user has in full.
    private func recordDone(_ exchange: Exchange) {
        self.context.metrics.requestFinished(agent: exchange.route.agent, serviceType: exchange.route.serviceType,
                                             code: exchange.status, seconds: exchange.started.secondsElapsed)
        Log.info("request done", [
            "request": exchange.requestID, "agent": exchange.route.agent, "service": exchange.route.serviceKey,
            "user": exchange.route.user, "method": exchange.method, "status": "\(exchange.status)",
            "ms": Log.milliseconds(since: exchange.started),
        ])
    }

    private func resumeReadingIfPaused() {
        if self.isReadingPausedForBackpressure {
            self.isReadingPausedForBackpressure = false
            self.context.metrics.flowBlockedEnded()
            self.connection.resumeReading()
        }
    }

    private func write(_ bytes: [UInt8], body: Int) {
        if body > 0 { self.exchange?.audit?.bytesOut += body }
        self.ledger.record(written: bytes.count, body: body, for: self.stream)
        self.connection.write(bytes)
    }
}

extension UserHTTP1Connection: ConnectionDelegate {
    func connectionDidBecomeActive(_ connection: Connection) {}

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {
        if let exchange = self.exchange, exchange.upgrade != nil {
            self.sendRequestBytes(Array(bytes))
            return
        }
        if self.exchange == nil { self.timeouts.bytesArrived(at: DispatchTime.now().uptimeNanoseconds) }
        self.parser.feed(bytes)
        if self.parser.bufferedByteCount > Self.highWater { connection.pauseReading() }
        self.processInput()
    }

    func connectionDidReceiveEOF(_ connection: Connection) {
        if let exchange = self.exchange, exchange.upgrade != nil {
            self.stream?.end()  // half-close: the backend sees EOF, its answer still flows back
            return
        }
        connection.close()
    }

    func connection(_ connection: Connection, didFlush count: Int) {
        self.ledger.flushed(count) { stream, body in stream.consume(body) }
    }

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        if let error { Log.debug("user connection closed", ["peer": self.peer, "error": "\(error)"]) }
        if let exchange = self.exchange {
            if exchange.responseEnded || exchange.responseBytesDue == 0 {
                // The user has the whole response and left before the stream's last frame: not a cancellation.
                self.recordDone(exchange)
            } else {
                Log.info("user went away mid-request", ["request": exchange.requestID, "agent": exchange.route.agent])
                if self.stream != nil { self.context.cancellationBudget.charge(exchange.route.user) }
            }
            self.stream?.cancel()
        }
        if self.isReadingPausedForBackpressure { self.context.metrics.flowBlockedEnded() }
        self.timer?.cancel()
        self.timer = nil
        self.ledger.removeAll { stream, body in stream.consume(body) }
        self.exchange = nil
        self.stream = nil
    }
}

extension UserHTTP1Connection: TunnelStreamDelegate {
    func tunnelStream(_ stream: TunnelStream, didReceiveResponse headers: [HTTPField], endStream: Bool) {
        guard stream === self.stream, var exchange = self.exchange, !exchange.responseStarted else { return }
        exchange.responseStarted = true
        var status = Int(headers.first { $0.name == ":status" }?.value ?? "") ?? 502
        if headers.contains(where: { $0.name == TunnelProtocol.statusHeader && $0.value == "101" }) { status = 101 }
        exchange.status = status
        var response = HTTPResponseHead(status: status)
        for field in headers where !field.name.hasASCIIPrefix(":") && !field.name.hasASCIIPrefix("porthole-") {
            response.headers.add(name: field.name, value: field.value)
        }
        let noBody = exchange.method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status)
        if status == 101 {
            exchange.upgraded = true
            response.headers.add(name: "Connection", value: "Upgrade")
            response.headers.add(name: "Upgrade", value: exchange.upgrade ?? "websocket")
        } else if let length = response.headers[first: "content-length"].flatMap({ Int($0) }), !noBody {
            exchange.responseBytesDue = length
        } else if !noBody {
            exchange.chunkedResponse = true
            response.headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        if exchange.upgrade != nil && status != 101 { exchange.keepAlive = false }
        if !exchange.keepAlive && status != 101 { response.headers.add(name: "Connection", value: "close") }
        self.exchange = exchange
        self.write(HTTP1Serializer.responseHead(response), body: 0)
        if endStream { self.tunnelStreamDidEnd(stream) }
    }

    func tunnelStream(_ stream: TunnelStream, didReceiveData bytes: [UInt8]) {
        guard stream === self.stream, let exchange = self.exchange else {
            stream.consume(bytes.count)
            return
        }
        if exchange.chunkedResponse {
            bytes.withUnsafeBytes { self.write(HTTP1Serializer.chunk($0), body: bytes.count) }
        } else if let due = exchange.responseBytesDue {
            self.exchange?.responseBytesDue = due - bytes.count
            self.write(bytes, body: bytes.count)
        } else {
            self.write(bytes, body: bytes.count)
        }
    }

    func tunnelStreamDidEnd(_ stream: TunnelStream) {
        guard stream === self.stream, var exchange = self.exchange, !exchange.responseEnded else { return }
        exchange.responseEnded = true
        self.exchange = exchange
        if exchange.upgraded {
            self.connection.shutdownOutput()
            return
        }
        if exchange.chunkedResponse { self.write(HTTP1Serializer.lastChunk, body: 0) }
        if exchange.upgrade != nil {
            // The backend refused the upgrade: nothing more will be sent its way, and the connection closes after.
            self.exchange?.requestEnded = true
            self.stream?.end()
        }
    }

    func tunnelStream(_ stream: TunnelStream, didDrain count: Int) {
        guard stream === self.stream else { return }
        self.requestBytesInFlight -= count
        if self.requestBytesInFlight < Self.highWater / 2 { self.resumeReadingIfPaused() }
    }

    func tunnelStream(_ stream: TunnelStream, didClose errorCode: UInt32) {
        guard stream === self.stream, let exchange = self.exchange else { return }
        if exchange.upgraded {
            self.finishExchange()
            return
        }
        if errorCode == 0 && exchange.responseEnded {
            self.finishExchange()
        } else if !exchange.responseStarted {
            let reason = errorCode == HTTP2ErrorCode.refusedStream
                ? "agent \(exchange.route.agent) refused the stream (draining or disconnected)"
                : "the tunnel to agent \(exchange.route.agent) failed (code \(errorCode))"
            self.refuse(status: 502, reason)
        } else {
            Log.warning("tunnel stream reset mid-response", ["request": exchange.requestID, "code": "\(errorCode)"])
            self.exchange?.keepAlive = false
            self.connection.close()
        }
    }
}

// Confined to the connection's queue.
extension UserHTTP1Connection: @unchecked Sendable {}
