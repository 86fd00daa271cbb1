import CNGHTTP2
import Dispatch
import Foundation
import Tunnel

/// Everything an agent's tunnels share: identity, TLS, services.
final class AgentContext: Sendable {
    let name: String
    let tls: TLSContext
    let services: [String: BackendService]
    let annotations: [String: String]
    let configuration: AgentConfiguration

    init(name: String, tls: TLSContext, services: [BackendService], annotations: [String: String],
         configuration: AgentConfiguration) {
        self.name = name
        self.tls = tls
        self.services = Dictionary(services.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.annotations = annotations
        self.configuration = configuration
    }

    var hello: AgentHello {
        AgentHello(name: self.name, protocolVersion: TunnelProtocol.version, agentVersion: portholeVersion,
                   annotations: self.annotations,
                   services: self.services.values.map(\.advertised).sorted { ($0.type, $0.name) < ($1.type, $1.name) })
    }
}

/// Keeps one tunnel to one controller address up: dials, serves the controller's streams, and redials with
/// jittered backoff when the tunnel drops.
final class AgentTunnel {
    let controller: ListenAddress
    private let context: AgentContext
    private let queue: DispatchQueue
    private var backoff: Backoff
    private var current: HTTP2Connection?
    private var connectedAt: Date?
    private var isStopped = false
    private var instance = "-"

    init(controller: ListenAddress, context: AgentContext) {
        self.controller = controller
        self.context = context
        self.queue = EventLoops.shared.makeConnectionQueue(label: "porthole.agent.tunnel")
        self.backoff = Backoff(minimum: context.configuration.reconnectMinSeconds,
                               maximum: context.configuration.reconnectMaxSeconds)
    }

    var isUp: Bool { self.queue.sync { self.current != nil && self.connectedAt != nil } }

    func start() {
        self.queue.async { self.dial() }
    }

    private func dial() {
        guard !self.isStopped else { return }
        do {
            guard let address = try SocketAddress.resolve(host: self.controller.host, port: self.controller.port).first
            else { throw ConnectionError.io(IOError(errno: EHOSTUNREACH, call: "resolve(\(self.controller.host))")) }
            let connection = try Connection.connect(
                to: address, tls: self.context.tls,
                serverName: self.context.configuration.serverName(for: self.controller), queue: self.queue)
            var settings = HTTP2Settings()
            settings.streamWindow = Int32(self.context.configuration.streamWindowBytes)
            settings.validateHTTPMessaging = false
            let tunnel = try HTTP2Connection(
                connection: connection, role: .server, settings: settings,
                ping: PingPolicy(interval: self.context.configuration.pingIntervalSeconds,
                                 timeout: self.context.configuration.pingTimeoutSeconds))
            self.current = tunnel
            tunnel.start(delegate: self)
        } catch {
            self.scheduleRedial(after: error)
        }
    }

    private func scheduleRedial(after error: Error?) {
        guard !self.isStopped else { return }
        if let connectedAt, Date().timeIntervalSince(connectedAt) > self.context.configuration.reconnectResetAfterSeconds {
            self.backoff.reset()
        }
        self.connectedAt = nil
        let delay = self.backoff.nextDelay()
        Log.warning("tunnel down", [
            "controller": "\(self.controller)", "error": error.map { "\($0)" } ?? "closed",
            "retryInSeconds": String(format: "%.2f", delay),
        ])
        self.queue.asyncAfter(deadline: .now() + delay) { self.dial() }
    }

    /// Stops redialing and sends GOAWAY; streams in flight may finish.
    func drain() {
        self.queue.async {
            self.isStopped = true
            self.current?.goAway()
        }
    }
}

extension AgentTunnel: HTTP2ConnectionDelegate {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection) {
        self.connectedAt = Date()
    }

    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler? {
        let path = headers.first { $0.name == ":path" }?.value ?? ""
        if path == TunnelProtocol.helloPath {
            self.instance = headers.first { $0.name == TunnelProtocol.instanceHeader }?.value ?? "-"
            self.answerHello(connection, streamID: streamID)
            Log.info("tunnel up", ["controller": "\(self.controller)", "instance": self.instance,
                                   "agent": self.context.name])
            return DiscardingStream()
        }
        let serviceKey = headers.first { $0.name == TunnelProtocol.serviceHeader }?.value ?? ""
        guard let service = self.context.services[serviceKey] else {
            let requestID = headers.first { $0.name == TunnelProtocol.requestIDHeader }?.value
            Log.warning("request for an unknown service", ["service": serviceKey, "request": requestID ?? "-"])
            connection.respond(streamID: streamID, headers: [
                HTTPField(":status", "404"), HTTPField("content-type", "application/json"),
                HTTPField(TunnelProtocol.errorHeader, "1"),
            ], hasBody: true)
            connection.sendData(streamID: streamID, ErrorBody.json(
                "agent \(self.context.name) has no service \(serviceKey)", requestID: requestID))
            connection.endStream(streamID: streamID)
            return DiscardingStream()
        }
        let exchange = BackendExchange(streamID: streamID, tunnel: connection, service: service, headers: headers,
                                       endStream: endStream)
        exchange.start()
        return exchange
    }

    private func answerHello(_ connection: HTTP2Connection, streamID: Int32) {
        let body = (try? JSONEncoder().encode(self.context.hello)) ?? Data()
        connection.respond(streamID: streamID, headers: [
            HTTPField(":status", "200"), HTTPField("content-type", "application/json"),
        ], hasBody: true)
        connection.sendData(streamID: streamID, Array(body))
        connection.endStream(streamID: streamID)
    }

    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval) {}

    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32) {
        Log.info("controller is draining this tunnel", ["controller": "\(self.controller)", "instance": self.instance])
    }

    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?) {
        guard self.current === connection else { return }
        self.current = nil
        self.scheduleRedial(after: error)
    }
}

// All state is confined to `queue`.
extension AgentTunnel: @unchecked Sendable {}

/// A stream whose answer is already sent: whatever else arrives is acknowledged and dropped.
final class DiscardingStream: HTTP2StreamHandler {
    func streamDidReceiveHeaders(_ headers: [HTTPField], endStream: Bool) {}
    func streamDidReceiveData(_ bytes: [UInt8]) {}
    func streamDidReceiveEnd() {}
    func streamDidDrain(_ count: Int) {}
    func streamDidClose(errorCode: UInt32) {}
}
