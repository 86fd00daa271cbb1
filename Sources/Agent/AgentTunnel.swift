import CNGHTTP2
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

/// Keeps one tunnel to one controller replica (one resolved address) up: dials, serves the controller's streams,
/// and redials with jittered backoff when the tunnel drops.
///
/// A new identity is taken make-before-break: a fresh connection is dialled, and only once it is up does the old
/// one get GOAWAY, so its streams (a watch, an exec session) finish undisturbed.
final class AgentTunnel {
    let address: SocketAddress
    let serverName: String
    private let context: AgentContext
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
    private let status = Mutex((isUp: false, activeStreams: 0))
    /// Keep-alive backend connections of this tunnel's streams.
    private let backends = BackendPool()
    /// While the controller cannot be reached every redial fails alike: one line per interval, with a count.
    private let dialFailures = RateLimitedLog(interval: 30)

    init(address: SocketAddress, serverName: String, context: AgentContext) {
        self.address = address
        self.serverName = serverName
        self.context = context
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
            let settings = TunnelProtocol.settings(streamWindow: self.context.configuration.streamWindowBytes)
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

    private func connectionLost(error: Error?) {
        self.updateStatus()
        guard !self.isStopped, !self.redialScheduled else { return }
        let wasUp = self.connectedAt != nil
        if let connectedAt, Date().timeIntervalSince(connectedAt) > self.context.configuration.reconnectResetAfterSeconds {
            self.backoff.reset()
        }
        self.connectedAt = nil
        self.redialScheduled = true
        let delay = self.backoff.nextDelay()
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
        self.queue.asyncAfter(deadline: .now() + delay) {
            self.redialScheduled = false
            guard self.current == nil else { return }
            self.context.metrics.reconnected()
            self.current = self.dial()
        }
    }

    /// Dials a replacement with the identity now in force; the old connection drains once it is up.
    func reconnectWithNewIdentity() {
        self.queue.async {
            guard !self.isStopped, self.replacement == nil else { return }
            guard self.current != nil else { return }  // a redial is pending and will use the new identity
            self.replacement = self.dial()
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
            connection.respond(streamID: streamID, headers: error.http2Headers(adding: [
                HTTPField(TunnelProtocol.errorHeader, "1"),
            ]), hasBody: true)
            connection.sendData(streamID: streamID, error.body)
            connection.endStream(streamID: streamID)
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
        Log.info("tunnel up", ["controller": "\(self.address)", "instance": self.instance, "agent": self.context.name])
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
            self.connectedAt = nil
            self.updateStatus()
            self.connectionLost(error: nil)
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
        self.updateStatus()
    }
}

// All state is confined to `queue`, except `status`, which is behind its mutex.
extension AgentTunnel: @unchecked Sendable {}
