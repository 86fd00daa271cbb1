import Dispatch
import Foundation
import Tunnel

/// A user's HTTP/2 connection on the service listener: each of its streams is carried over one tunnel stream.
///
/// Memory one connection can pin is bounded by its settings: at most `maxConcurrentStreamsPerConnection` streams,
/// and request bodies up to `userConnectionWindowBytes` in all (the connection window) however many streams
/// share it. With no stream open for `idleTimeoutSeconds` it sends GOAWAY and closes.
final class UserHTTP2Connection {
    let http2: HTTP2Connection
    let context: ControllerContext
    /// Connection-queue state: since when no stream is open (nil while one is), and the timer that checks it.
    private var idleSince: UInt64?
    private var idleTimer: ConnectionTimer?
    private let idleTimeout: UInt64

    init(connection: Connection, context: ControllerContext) throws {
        self.http2 = try HTTP2Connection(connection: connection, role: .server,
                                         settings: Self.settings(context.configuration), ping: nil)
        self.context = context
        self.idleTimeout = UInt64(context.configuration.idleTimeoutSeconds * 1e9)
    }

    /// What the controller announces to users: a stream window per stream, a smaller window for the connection.
    static func settings(_ configuration: ControllerConfiguration) -> HTTP2Settings {
        var settings = HTTP2Settings()
        settings.streamWindow = Int32(configuration.streamWindowBytes)
        settings.connectionWindow = Int32(configuration.userConnectionWindowBytes)
        settings.maxConcurrentStreams = UInt32(configuration.maxConcurrentStreamsPerConnection)
        settings.maxHeaderListSize = UInt32(configuration.maxHeaderBytes)
        settings.enableConnectProtocol = true
        return settings
    }

    func start() {
        self.idleTimer = ConnectionTimer(queue: self.http2.queue) { [weak self] in self?.idleTimerFired() }
        self.http2.start(delegate: self)
        self.becameIdle()
    }

    private func becameIdle() {
        let now = DispatchTime.now().uptimeNanoseconds
        self.idleSince = now
        self.idleTimer?.arm(at: now + self.idleTimeout)
    }

    private func idleTimerFired() {
        guard let idleSince, self.http2.activeStreamCount == 0, !self.http2.isClosed else { return }
        let deadline = idleSince + self.idleTimeout
        guard DispatchTime.now().uptimeNanoseconds >= deadline else {
            self.idleTimer?.arm(at: deadline)
            return
        }
        self.context.metrics.userConnectionTimedOut("idle")
        Log.debug("idle HTTP/2 connection closed", [
            "peer": self.http2.connection.peerAddress.map { "\($0)" } ?? "?",
        ])
        self.http2.goAwayAndClose()
    }
}

extension UserHTTP2Connection: HTTP2ConnectionDelegate {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection) {}

    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler? {
        if self.idleSince != nil {
            self.idleSince = nil
            self.idleTimer?.disarm()
        }
        let stream = UserHTTP2Stream(streamID: streamID, owner: self)
        stream.begin(headers: headers, endStream: endStream)
        return stream
    }

    func http2ConnectionDidBecomeIdle(_ connection: HTTP2Connection) {
        self.becameIdle()
    }

    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval) {}
    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32) {}

    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?) {
        self.idleTimer?.cancel()
        self.idleTimer = nil
    }
}

// Confined to the connection's queue.
extension UserHTTP2Connection: @unchecked Sendable {}

/// One user HTTP/2 stream and its tunnel stream.
final class UserHTTP2Stream {
    private let streamID: Int32
    private let owner: UserHTTP2Connection
    private var tunnel: TunnelStream? {
        didSet {
            // The stream's tunnel stream is over: a debug session forgets it.
            if oldValue !== self.tunnel, let ended = self.tunnelEnded {
                self.tunnelEnded = nil
                ended()
            }
        }
    }
    /// Called when `tunnel` ends, for a stream registered with its debug session.
    private var tunnelEnded: (@Sendable () -> Void)?
    private var requestID = RandomID.request()
    private var route = Route(agent: "-", serviceType: "-", serviceName: "-", user: "-")
    private var method = "GET"
    private var started = DispatchTime.now()
    private var status = 0 {
        didSet { self.audit?.status = self.status }
    }
    /// The gateway audit of the stream: its end line is written when this stream is let go.
    private var audit: StreamAudit?
    private var responseStarted = false
    private var isDone = false

    private var connection: HTTP2Connection { self.owner.http2 }
    private var context: ControllerContext { self.owner.context }

    init(streamID: Int32, owner: UserHTTP2Connection) {
        self.streamID = streamID
        self.owner = owner
    }

    func begin(headers: [HTTPField], endStream: Bool) {
        let request = UserRequest(http2: headers, requestID: self.requestID, endStream: endStream,
                                  peerCertificate: self.connection.connection.tls?.peerCertificate,
                                  peerHost: self.connection.connection.peerAddress?.host)
        self.method = request.method
        self.pending = Pending()
        self.context.pipeline.decide(request, deliverOn: self.connection.queue) { outcome in
            self.decided(outcome, request: request)
        }
    }

    /// Body bytes and the end of the request that arrived while the pipeline was deciding (on a worker thread):
    /// not acknowledged, so the stream's window bounds them; they go to the tunnel once the stream is forwarded.
    private struct Pending {
        var body: [[UInt8]] = []
        var ended = false
    }

    private var pending: Pending?
    /// A body route's body being read.
    private var collecting: (route: BodyRoute, body: [UInt8])?

    private func decided(_ outcome: PipelineOutcome, request: UserRequest) {
        guard let pending = self.pending, !self.isDone else { return }
        self.pending = nil
        switch outcome {
        case .refuse(let refusal):
            if let route = refusal.route { self.route = route }
            self.context.record(refusal, requestID: self.requestID, peer: self.peer, started: self.started)
            self.respond(refusal.error, extra: refusal.extraHeaders)
        case .respond(let response):
            self.respondLocally(response)
        case .collect(let route):
            self.collecting = (route, pending.body.flatMap { $0 })
            if self.collecting!.body.count > route.limit {
                self.collecting = nil
                self.respond(ErrorResponse(status: 413, message: "the body is larger than \(route.limit) bytes",
                                           serviceType: nil, requestID: self.requestID))
            } else if pending.ended || !request.hasBody {
                self.runCollected()
            }
        case .forward(let forward):
            self.route = forward.route
            self.audit = forward.audit
            let tunnel = forward.session.openStream(headers: forward.fields, hasBody: forward.hasBody, delegate: self,
                                                    delegateQueue: self.connection.queue)
            self.tunnel = tunnel
            if let onOpen = forward.onOpen {
                let queue = self.connection.queue
                self.tunnelEnded = onOpen { [self] in
                    queue.async {
                        tunnel.cancel()
                        guard !self.isDone else { return }
                        self.isDone = true
                        Log.info("stream cut by its debug session", ["request": self.requestID])
                        self.connection.reset(streamID: self.streamID, errorCode: HTTP2ErrorCode.cancel)
                    }
                }
            }
            for bytes in pending.body { self.streamDidReceiveData(bytes) }
            if pending.ended { self.streamDidReceiveEnd() }
            return
        }
        // Answered here: give back the window the waiting body held.
        let held = pending.body.reduce(0) { $0 + $1.count }
        if held > 0 { self.connection.consume(streamID: self.streamID, count: held) }
    }

    private var peer: String { self.connection.connection.peerAddress.map { "\($0)" } ?? "?" }

    /// Answers from the controller itself.
    private func respondLocally(_ response: LocalResponse) {
        guard !self.isDone else { return }
        self.isDone = true
        self.responseStarted = true
        let hasBody = !response.body.isEmpty && self.method != "HEAD"
        self.connection.respond(streamID: self.streamID, headers: [HTTPField(":status", "\(response.status)")]
                                    + response.headers + [HTTPField("content-length", "\(response.body.count)")],
                                hasBody: hasBody)
        if hasBody {
            self.connection.sendData(streamID: self.streamID, response.body)
            self.connection.endStream(streamID: self.streamID)
        }
        Log.info("request done", ["request": self.requestID, "method": self.method,
                                  "status": "\(response.status)", "protocol": "h2", "served": "controller"])
    }

    /// Runs the body route on a worker thread, then answers on the connection's queue.
    private func runCollected() {
        guard let (route, body) = self.collecting else { return }
        self.collecting = nil
        let queue = self.connection.queue
        BodyRoute.workers.async {
            let response = route.respond(body)
            queue.async { self.respondLocally(response) }
        }
    }

    /// Refuses the stream once the tunnel failed it.
    private func refuse(_ status: Int, _ message: String) {
        let refusal = RequestRefusal(
            error: ErrorResponse(status: status, message: message, serviceType: self.route.serviceType,
                                 requestID: self.requestID),
            route: self.route)
        self.context.record(refusal, requestID: self.requestID, peer: self.peer, started: self.started)
        self.respond(refusal.error)
    }

    /// Answers from the controller itself with an error.
    private func respond(_ error: ErrorResponse, extra: [HTTPField] = []) {
        self.isDone = true
        self.responseStarted = true
        self.connection.answer(streamID: self.streamID, with: error, adding: extra)
    }
}

extension UserHTTP2Stream: HTTP2StreamHandler {
    func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool) {
        if endStream { self.streamDidReceiveEnd() }
    }

    func streamDidReceiveData(_ bytes: [UInt8]) {
        if self.pending != nil {
            self.pending!.body.append(bytes)
            return
        }
        if let collecting = self.collecting {
            self.connection.consume(streamID: self.streamID, count: bytes.count)
            self.collecting!.body += bytes
            if collecting.body.count + bytes.count > collecting.route.limit {
                self.collecting = nil
                self.respond(ErrorResponse(status: 413, message: "the body is larger than \(collecting.route.limit) bytes",
                                           serviceType: nil, requestID: self.requestID))
            }
            return
        }
        guard let tunnel = self.tunnel else {
            self.connection.consume(streamID: self.streamID, count: bytes.count)
            return
        }
        self.audit?.bytesIn += bytes.count
        tunnel.send(bytes)
    }

    func streamDidReceiveEnd() {
        if self.pending != nil {
            self.pending!.ended = true
            return
        }
        if self.collecting != nil {
            self.runCollected()
            return
        }
        Log.debug("user ended its request body", ["request": self.requestID])
        self.tunnel?.end()
    }

    func streamDidDrain(_ count: Int) {
        // Response bytes reached the user's connection: the agent may send more.
        self.tunnel?.consume(count)
    }

    func streamDidClose(errorCode: UInt32) {
        self.pending = nil
        if !self.isDone {
            self.isDone = true
            Log.info("user went away mid-request", ["request": self.requestID, "agent": self.route.agent])
            if self.tunnel != nil { self.context.cancellationBudget.charge(self.route.user) }
            self.tunnel?.cancel()
        }
        self.tunnel = nil
        self.audit?.finish()
        self.audit = nil
    }
}

extension UserHTTP2Stream: TunnelStreamDelegate {
    func tunnelStream(_ stream: TunnelStream, didReceiveResponse headers: [HTTPField], endStream: Bool) {
        guard !self.responseStarted else { return }
        self.responseStarted = true
        var fields: [HTTPField] = []
        let switched = headers.contains { $0.name == TunnelProtocol.statusHeader && $0.value == "101" }
        for field in headers where !field.name.hasASCIIPrefix("porthole-") {
            if field.name == ":status" { self.status = Int(field.value) ?? 502 }
            // Over HTTP/2 a successful extended CONNECT is a 200 without the HTTP/1.1 handshake's accept header.
            if switched && field.name == "sec-websocket-accept" { continue }
            fields.append(field)
        }
        if switched { self.status = 101 }
        self.connection.respond(streamID: self.streamID, headers: fields, hasBody: !endStream)
        if endStream { self.finish() }
    }

    func tunnelStream(_ stream: TunnelStream, didReceiveData bytes: [UInt8]) {
        self.audit?.bytesOut += bytes.count
        self.connection.sendData(streamID: self.streamID, bytes)
    }

    func tunnelStreamDidEnd(_ stream: TunnelStream) {
        Log.debug("agent ended the response", ["request": self.requestID])
        self.connection.endStream(streamID: self.streamID)
        self.finish()
    }

    func tunnelStream(_ stream: TunnelStream, didDrain count: Int) {
        // Request bytes left for the agent: the user may send more.
        self.connection.consume(streamID: self.streamID, count: count)
    }

    func tunnelStream(_ stream: TunnelStream, didClose errorCode: UInt32) {
        guard !self.isDone else { return }
        if !self.responseStarted {
            self.refuse(502, errorCode == HTTP2ErrorCode.refusedStream
                ? "agent \(self.route.agent) refused the stream (draining or disconnected)"
                : "the tunnel to agent \(self.route.agent) failed (code \(errorCode))")
        } else if errorCode != 0 {
            self.isDone = true
            self.connection.reset(streamID: self.streamID, errorCode: HTTP2ErrorCode.internalError)
        }
    }

    private func finish() {
        guard !self.isDone else { return }
        self.isDone = true
        self.context.metrics.requestFinished(agent: self.route.agent, serviceType: self.route.serviceType,
                                             code: self.status, seconds: self.started.secondsElapsed)
        Log.info("request done", [
            "request": self.requestID, "agent": self.route.agent, "service": self.route.serviceKey,
            "user": self.route.user, "method": self.method, "status": "\(self.status)", "protocol": "h2",
            "ms": Log.milliseconds(since: self.started),
        ])
    }
}

// Confined to the user connection's queue.
extension UserHTTP2Stream: @unchecked Sendable {}
