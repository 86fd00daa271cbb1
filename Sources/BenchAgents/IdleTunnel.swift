import Dispatch
import Foundation
import Tunnel

/// One idle agent tunnel: dials the controller with its own certificate, answers the hello as `porthole-agent`
/// does (`Sources/Agent/AgentTunnel.swift`), refuses anything else, and redials with jittered backoff.
final class IdleTunnel {
    private let name: String
    private let tls: TLSContext
    private let options: BenchOptions
    private let fleet: AgentFleet
    private let queue: DispatchQueue
    private let hello: [UInt8]
    private var backoff: Backoff
    private var current: HTTP2Connection?
    private var isUp = false
    private var isFirstDial = true
    private var connectedAt: Date?

    init(name: String, tls: TLSContext, options: BenchOptions, fleet: AgentFleet) {
        self.name = name
        self.tls = tls
        self.options = options
        self.fleet = fleet
        self.queue = EventLoops.shared.makeConnectionQueue(label: "porthole.bench.tunnel")
        self.backoff = Backoff(minimum: options.reconnectMinSeconds, maximum: options.reconnectMaxSeconds)
        let hello = AgentHello(name: name, protocolVersion: TunnelProtocol.version, agentVersion: portholeVersion,
                               annotations: ["porthole-bench": "idle"], services: [])
        self.hello = Array((try? JSONEncoder().encode(hello)) ?? Data())
    }

    func start() {
        self.queue.async { self.dial() }
    }

    private func dial() {
        do {
            guard let address = try SocketAddress.resolve(host: self.options.controller.host,
                                                          port: self.options.controller.port).first
            else { throw ConnectionError.io(IOError(errno: EHOSTUNREACH, call: "resolve")) }
            let connection = try Connection.connect(
                to: address, tls: self.tls, serverName: self.options.serverName ?? self.options.controller.host,
                queue: self.queue)
            let settings = TunnelProtocol.settings(streamWindow: self.options.streamWindowBytes)
            let tunnel = try HTTP2Connection(
                connection: connection, role: .server, settings: settings,
                ping: PingPolicy(interval: self.options.pingIntervalSeconds, timeout: self.options.pingTimeoutSeconds))
            self.current = tunnel
            tunnel.start(delegate: self)
        } catch {
            self.down(error: error)
        }
    }

    private func down(error: Error?) {
        if self.isUp {
            self.isUp = false
            self.fleet.tunnelWentDown()
        }
        self.fleet.recordFailure(error.map { "\($0)" } ?? "closed")
        self.finishFirstDial()
        if let connectedAt = self.connectedAt,
           Date().timeIntervalSince(connectedAt) > AgentTunnelDefaults.reconnectResetAfterSeconds {
            self.backoff.reset()
        }
        self.connectedAt = nil
        let delay = self.backoff.nextDelay()
        self.queue.asyncAfter(deadline: .now() + delay) { self.dial() }
    }

    private func finishFirstDial() {
        guard self.isFirstDial else { return }
        self.isFirstDial = false
        self.fleet.firstDialFinished()
    }
}

extension IdleTunnel: HTTP2ConnectionDelegate {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection) {
        self.connectedAt = Date()
    }

    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler? {
        let path = headers.first { $0.name == ":path" }?.value ?? ""
        if path == TunnelProtocol.helloPath {
            connection.respond(streamID: streamID, headers: [
                HTTPField(":status", "200"), HTTPField("content-type", "application/json"),
            ], hasBody: true)
            connection.sendData(streamID: streamID, self.hello)
            connection.endStream(streamID: streamID)
            if !self.isUp {
                self.isUp = true
                self.fleet.tunnelCameUp()
            }
            self.finishFirstDial()
            return DiscardingStream()
        }
        let serviceType = headers.first { $0.name == TunnelProtocol.serviceHeader }?.value.split(separator: "/").first
        let error = ErrorResponse(status: 404, message: "bench agent \(self.name) serves nothing",
                                  serviceType: serviceType.map(String.init))
        connection.answer(streamID: streamID, with: error, adding: [HTTPField(TunnelProtocol.errorHeader, "1")])
        return DiscardingStream()
    }

    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval) {}

    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32) {}

    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?) {
        guard self.current === connection else { return }
        self.current = nil
        self.down(error: error)
    }
}

// All state is confined to `queue`.
extension IdleTunnel: @unchecked Sendable {}
