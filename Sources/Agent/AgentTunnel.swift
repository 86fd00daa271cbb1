import Dispatch
import Foundation
import Synchronization
import Tunnel

/// Everything an agent's tunnels share: identity, services, settings and metrics.
final class AgentContext: Sendable {
    let identity: AgentIdentity
    let services: [String: BackendService]
    let annotations: [String: String]
    let configuration: AgentConfiguration
    let metrics: AgentMetrics

    var name: String { self.identity.name }

    init(identity: AgentIdentity, services: [BackendService], annotations: [String: String],
         configuration: AgentConfiguration, metrics: AgentMetrics) {
        self.identity = identity
        self.services = Dictionary(services.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.annotations = annotations
        self.configuration = configuration
        self.metrics = metrics
    }

    var hello: AgentHello {
        AgentHello(name: self.name, protocolVersion: TunnelProtocol.version, agentVersion: portholeVersion,
                   annotations: self.annotations,
                   services: self.services.values.map(\.advertised).sorted { ($0.type, $0.name) < ($1.type, $1.name) })
    }
}

/// Keeps one tunnel to one controller address up: dials, serves the controller's streams, and redials with
/// jittered backoff when the tunnel drops. Which replica it reached, and its loss, are reported to the owner
/// (`ControllerPool`), which may tell it to let a duplicate go.
///
/// A new identity is taken make-before-break: a fresh connection is dialled, and only once it is up does the old
/// one get GOAWAY, so its streams (a watch, an exec session) finish undisturbed. A connection whose session sends
/// GOAWAY unasked (nghttp2's flood guards, a fatal error) is replaced the same way: a new connection is dialled at
/// once while the old one finishes its streams.
final class AgentTunnel {
    /// What a tunnel tells its owner, on the tunnel's queue.
    enum Report: Sendable {
        /// A connection answered the hello of controller replica `instance`, which announced `replicaCount`.
        case helloAnswered(instance: String, replicaCount: Int?)
        /// The tunnel is down; it redials by itself unless stopped.
        case lost
    }

    let address: SocketAddress
    let serverName: String
    /// The owner's name for this tunnel (a `ControllerReplicaTracker` slot).
    let slot: Int
    private let context: AgentContext
    private let report: @Sendable (AgentTunnel, Report) -> Void
    let queue: DispatchQueue
    private var backoff: Backoff
    /// The connection new streams arrive on.
    private var current: HTTP2Connection?
    /// A connection being dialled to replace `current`.
    private var replacement: HTTP2Connection?
    /// Connections told to go away, finishing their streams.
    private var retiring: [HTTP2Connection] = []
    private var connectedAt: Date?
    private var isStopped = false
    private var redialScheduled = false
    private var instance = "-"
    /// The replica count announced in the last hello; nil when the controller announced none.
    private var announcedReplicaCount: Int?
    private let status = Mutex((isUp: false, activeStreams: 0))
    /// Keep-alive backend connections of this tunnel's streams.
    private let backends = BackendPool()
    /// While the controller cannot be reached every redial fails alike: one line per interval, with a count.
    private let dialFailures = RateLimitedLog(interval: 30)

    init(address: SocketAddress, serverName: String, slot: Int, context: AgentContext,
         report: @escaping @Sendable (AgentTunnel, Report) -> Void) {
        self.address = address
        self.serverName = serverName
        self.slot = slot
        self.context = context
        self.report = report
        self.queue = EventLoops.shared.makeConnectionQueue(label: "porthole.agent.tunnel")
        self.backoff = Backoff(minimum: context.configuration.reconnectMinSeconds,
                               maximum: context.configuration.reconnectMaxSeconds)
    }

    /// Whether a tunnel on this address has said hello and serves streams.
    var isUp: Bool { self.status.withLock { $0.isUp } }
    /// Streams in flight on every connection of this tunnel.
    var activeStreams: Int { self.status.withLock { $0.activeStreams } }

    func start() {
        self.queue.async { self.current = self.dial() }
    }

    private func dial() -> HTTP2Connection? {
        guard !self.isStopped else { return nil }
        do {
            let connection = try Connection.connect(to: self.address, tls: self.context.identity.tls,
                                                    serverName: self.serverName, queue: self.queue)
            var settings = TunnelProtocol.settings(streamWindow: self.context.configuration.streamWindowBytes)
            if let limit = Self.testStreamResetRateLimit {
                settings.streamResetBurst = limit.burst
                settings.streamResetsPerSecond = limit.perSecond
            }
            let tunnel = try HTTP2Connection(
                connection: connection, role: .server, settings: settings,
                ping: PingPolicy(interval: self.context.configuration.pingIntervalSeconds,
                                 timeout: self.context.configuration.pingTimeoutSeconds))
            tunnel.start(delegate: self)
            return tunnel
        } catch {
            self.connectionLost(error: error)
            return nil
        }
    }

    /// `PORTHOLE_TEST_TUNNEL_RESET_LIMIT=BURST,PER_SECOND`: nghttp2's rapid-reset guard on the tunnel set very low,
    /// so that end-to-end tests can make the agent's session send GOAWAY. Not for production; undocumented there.
    private static let testStreamResetRateLimit: (burst: UInt64, perSecond: UInt64)? = {
        guard let value = ProcessInfo.processInfo.environment["PORTHOLE_TEST_TUNNEL_RESET_LIMIT"] else { return nil }
        let parts = value.split(separator: ",").compactMap { UInt64($0) }
        guard parts.count == 2 else { return nil }
        Log.warning("test setting in force: tunnel stream-reset limit", ["burst": "\(parts[0])",
                                                                        "perSecond": "\(parts[1])"])
        return (parts[0], parts[1])
    }()

    private func connectionLost(error: Error?) {
        self.report(self, .lost)
        self.updateStatus()
        guard !self.isStopped, !self.redialScheduled else { return }
        let wasUp = self.connectedAt != nil
        if let connectedAt, Date().timeIntervalSince(connectedAt) > self.context.configuration.reconnectResetAfterSeconds {
            self.backoff.reset()
        }
        self.connectedAt = nil
        let delay = self.scheduleRedial()
        let fields = [
            "controller": "\(self.address)", "instance": self.instance, "error": error.map { "\($0)" } ?? "closed",
            "retryInSeconds": String(format: "%.2f", delay),
        ]
        if wasUp {
            Log.warning("tunnel down", fields)
        } else {
            // A dial that failed, again: folded into one line per interval.
            self.dialFailures.record(.warning, "tunnel down", key: "dial", fields)
        }
    }

    /// Dials a new current connection after the next backoff delay; returns the delay.
    @discardableResult
    private func scheduleRedial() -> Double {
        guard !self.isStopped, !self.redialScheduled else { return 0 }
        self.redialScheduled = true
        let delay = self.backoff.nextDelay()
        self.queue.asyncAfter(deadline: .now() + delay) {
            self.redialScheduled = false
            guard self.current == nil else { return }
            self.context.metrics.reconnected()
            self.current = self.dial()
        }
        return delay
    }

    /// Dials a replacement with the identity now in force; the old connection drains once it is up.
    func reconnectWithNewIdentity() {
        self.queue.async {
            guard !self.isStopped, self.replacement == nil else { return }
            guard self.current != nil else { return }  // a redial is pending and will use the new identity
            self.replacement = self.dial()
        }
    }

    /// Lets go of the connection to `instance`, a replica another tunnel already holds: GOAWAY, its streams finish,
    /// and the tunnel dials again after its backoff. Does nothing if the tunnel no longer holds `instance`.
    func dropDuplicate(instance: String) {
        self.queue.async {
            guard !self.isStopped, let current = self.current, self.connectedAt != nil, self.instance == instance else {
                return
            }
            Log.info("tunnel reached a controller replica already held; dialling again", [
                "controller": "\(self.address)", "instance": instance,
            ])
            self.current = nil
            self.retiring.append(current)
            current.goAway()
            // Not a healthy period: the backoff keeps growing while the name keeps answering with held replicas.
            self.connectedAt = nil
            self.updateStatus()
            self.scheduleRedial()
        }
    }

    /// Sends GOAWAY on every connection and stops redialing; streams in flight may finish.
    func drain() {
        self.queue.async {
            self.isStopped = true
            for connection in [self.current, self.replacement].compactMap({ $0 }) + self.retiring {
                connection.goAway()
            }
        }
    }

    /// Lets go of this replica for good (its address disappeared from DNS).
    func stop() {
        self.drain()
        self.queue.asyncAfter(deadline: .now() + self.context.configuration.drainTimeoutSeconds) {
            for connection in [self.current, self.replacement].compactMap({ $0 }) + self.retiring {
                connection.close(error: nil)
            }
        }
    }

    private func updateStatus() {
        // Runs for every stream opened: counted without building arrays.
        var streams = (self.current?.activeStreamCount ?? 0) + (self.replacement?.activeStreamCount ?? 0)
        for connection in self.retiring { streams += connection.activeStreamCount }
        let isUp = self.connectedAt != nil && self.current != nil
        self.status.withLock { $0 = (isUp, streams) }
    }
}

extension AgentTunnel: HTTP2ConnectionDelegate {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection) {}

    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler? {
        defer { self.updateStatus() }
        if TunnelProtocol.isHello(headers) {
            self.instance = headers.first { $0.name == TunnelProtocol.instanceHeader }?.value ?? "-"
            self.announcedReplicaCount = TunnelProtocol.replicaCount(
                headers.first { $0.name == TunnelProtocol.replicasHeader }?.value)
            self.answerHello(connection, streamID: streamID)
            self.helloAnswered(on: connection)
            return DiscardingStream()
        }
        let serviceKey = headers.first { $0.name == TunnelProtocol.serviceHeader }?.value ?? ""
        guard let service = self.context.services[serviceKey] else {
            let requestID = headers.first { $0.name == TunnelProtocol.requestIDHeader }?.value
            Log.warning("request for an unknown service", ["service": serviceKey, "request": requestID ?? "-"])
            let error = ErrorResponse(
                status: 404, message: "agent \(self.context.name) has no service \(serviceKey)",
                serviceType: serviceKey.split(separator: "/").first.map(String.init), requestID: requestID)
            connection.answer(streamID: streamID, with: error, adding: [HTTPField(TunnelProtocol.errorHeader, "1")])
            return DiscardingStream()
        }
        let exchange = BackendExchange(streamID: streamID, tunnel: connection, service: service, headers: headers,
                                       endStream: endStream, metrics: self.context.metrics, pool: self.backends)
        exchange.start()
        return exchange
    }

    private func helloAnswered(on connection: HTTP2Connection) {
        if connection === self.replacement, let old = self.current {
            // The new identity is in service: the old connection finishes its streams and goes.
            self.replacement = nil
            self.current = connection
            self.retiring.append(old)
            old.goAway()
            Log.info("tunnel moved to the new certificate", ["controller": "\(self.address)",
                                                             "instance": self.instance])
        }
        self.connectedAt = Date()
        self.dialFailures.recovered(key: "dial")
        var fields = ["controller": "\(self.address)", "instance": self.instance, "agent": self.context.name]
        if let count = self.announcedReplicaCount { fields["replicas"] = "\(count)" }
        Log.info("tunnel up", fields)
        self.updateStatus()
        // A controller without an instance id cannot be told apart from others: count each tunnel as its own.
        let instance = self.instance == "-" ? "unnamed-\(ObjectIdentifier(connection).hashValue)" : self.instance
        self.report(self, .helloAnswered(instance: instance, replicaCount: self.announcedReplicaCount))
    }

    private func answerHello(_ connection: HTTP2Connection, streamID: Int32) {
        let body = (try? JSONEncoder().encode(self.context.hello)) ?? Data()
        connection.respond(streamID: streamID, headers: [
            HTTPField(":status", "200"), HTTPField("content-type", "application/json"),
        ], hasBody: true)
        connection.sendData(streamID: streamID, Array(body))
        connection.endStream(streamID: streamID)
    }

    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval) {
        self.context.metrics.pingRTT(roundTrip)
        self.updateStatus()
    }

    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32) {
        Log.info("controller is draining this tunnel", ["controller": "\(self.address)", "instance": self.instance])
        if connection === self.current {
            // Serve what is in flight there, but dial again at once: the replica may be restarting.
            self.current = nil
            self.retiring.append(connection)
            self.connectionLost(error: nil)
        }
    }

    func http2Connection(_ connection: HTTP2Connection, didSendGoAway errorCode: UInt32) {
        guard !self.isStopped else { return }  // our own drain
        if connection === self.current {
            // Unasked: nghttp2 refused the peer's behaviour (e.g. too many stream resets) or hit a fatal error. The
            // session takes no new streams, so a replacement is dialled now; in-flight streams finish on the old one.
            Log.warning("tunnel session sent GOAWAY; dialling a replacement", [
                "controller": "\(self.address)", "instance": self.instance, "errorCode": "\(errorCode)",
                "activeStreams": "\(connection.activeStreamCount)",
            ])
            let wasUpFor = self.connectedAt.map { Date().timeIntervalSince($0) } ?? 0
            self.current = nil
            self.retiring.append(connection)
            self.connectedAt = nil
            self.report(self, .lost)
            self.updateStatus()
            if wasUpFor >= 1 {
                self.context.metrics.reconnected()
                self.current = self.dial()
            } else {
                // A connection that goes at once again and again must not turn into a dialling loop.
                self.scheduleRedial()
            }
        } else if connection === self.replacement {
            self.replacement = nil
            self.retiring.append(connection)
            self.queue.asyncAfter(deadline: .now() + self.backoff.nextDelay()) { self.reconnectWithNewIdentity() }
        }
    }

    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?) {
        self.retiring.removeAll { $0 === connection }
        if connection === self.replacement {
            self.replacement = nil
            Log.warning("dialling with the new certificate failed", ["controller": "\(self.address)",
                                                                      "error": error.map { "\($0)" } ?? "closed"])
            self.queue.asyncAfter(deadline: .now() + self.backoff.nextDelay()) { self.reconnectWithNewIdentity() }
        } else if connection === self.current {
            self.current = nil
            self.connectionLost(error: error)
        }
        if self.current == nil, self.replacement == nil, self.retiring.isEmpty {
            // No tunnel connection is left to use them: idle backend connections would otherwise outlive a stopped
            // tunnel (they expire only when the next request looks).
            self.backends.closeAll()
        }
        self.updateStatus()
    }
}

// All state is confined to `queue`, except `status`, which is behind its mutex.
extension AgentTunnel: @unchecked Sendable {}
