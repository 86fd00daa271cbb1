import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The controller's end of one agent tunnel: HTTP/2 client over the agent's mTLS connection.
final class TunnelSession {
    let id = RandomID.make(bytes: 6)
    let agentName: String
    let address: String
    let connectedSince = Date()
    let queue: DispatchQueue
    private let context: ControllerContext
    /// The HTTP/2 connection; nil once closed. Tunnel-queue state.
    private(set) var connection: HTTP2Connection?
    private let counters = Mutex((activeStreams: 0, isDraining: false, hello: AgentHello(
        name: "", protocolVersion: 0, agentVersion: "", annotations: [:], services: [])))
    private var isRegistered = false

    var activeStreams: Int { self.counters.withLock { $0.activeStreams } }
    var isDraining: Bool { self.counters.withLock { $0.isDraining } }
    var hello: AgentHello { self.counters.withLock { $0.hello } }

    /// Serial number of the agent's certificate, to tell identities apart in logs across a rotation.
    let certificateSerial: String

    init(agentName: String, connection: Connection, context: ControllerContext) throws {
        self.agentName = agentName
        self.certificateSerial = connection.tls?.peerCertificate?.serialNumberHex ?? "-"
        self.address = connection.peerAddress.map { "\($0)" } ?? "?"
        self.queue = connection.queue
        self.context = context
        let settings = TunnelProtocol.settings(streamWindow: context.configuration.streamWindowBytes)
        self.connection = try HTTP2Connection(
            connection: connection, role: .client, settings: settings,
            ping: PingPolicy(interval: context.configuration.pingIntervalSeconds,
                             timeout: context.configuration.pingTimeoutSeconds))
    }

    func start() {
        self.connection?.start(delegate: self)
    }

    /// Whether the agent advertised this service.
    func offers(type: String, name: String) -> Bool {
        self.hello.services.contains { $0.type == type && $0.name == name }
    }

    /// Opens a stream for a user request; events reach `delegate` on `delegateQueue`.
    func openStream(headers: [HTTPField], hasBody: Bool, delegate: TunnelStreamDelegate,
                    delegateQueue: DispatchQueue) -> TunnelStream {
        let stream = TunnelStream(session: self, delegate: delegate, delegateQueue: delegateQueue)
        self.counters.withLock { $0.activeStreams += 1 }
        self.queue.async {
            guard let connection = self.connection else {
                stream.refuse()
                return
            }
            do {
                stream.opened(streamID: try connection.openStream(headers: headers, hasBody: hasBody, handler: stream))
            } catch {
                Log.warning("opening a tunnel stream failed", ["agent": self.agentName, "error": "\(error)"])
                stream.refuse()
            }
        }
        return stream
    }

    func streamFinished() {
        self.counters.withLock { $0.activeStreams -= 1 }
    }

    func countBytes(toAgent count: Int) {
        self.context.metrics.bytes(toAgent: count)
    }

    func countBytes(fromAgent count: Int) {
        self.context.metrics.bytes(fromAgent: count)
    }

    /// Sends GOAWAY: no new streams here; streams in flight finish.
    func drain() {
        self.counters.withLock { $0.isDraining = true }
        self.queue.async { self.connection?.goAway() }
    }

    /// Asks the agent who it is, through the same tunnel client controller code uses for its own requests.
    private func sendHello() {
        var headers = [
            HTTPField(":method", "GET"), HTTPField(":scheme", "https"), HTTPField(":authority", "porthole"),
            HTTPField(":path", TunnelProtocol.helloPath),
            HTTPField(TunnelProtocol.instanceHeader, self.context.instanceID),
        ]
        if let replicas = self.context.replicas.current {
            headers.append(HTTPField(TunnelProtocol.replicasHeader, "\(replicas)"))
        }
        TunnelClient.collect({ handler in
            TunnelClient.open(on: self, headers: headers, hasBody: false, queue: self.queue, handler: handler)
        }, limit: HelloResponse.maximumSize, timeout: self.context.configuration.pingTimeoutSeconds, queue: self.queue) {
            [weak self] result in
            guard let self else { return }
            self.helloFinished(HelloResponse.check(result, agentName: self.agentName))
        }
    }

    private func helloFinished(_ result: Result<AgentHello, ConnectionError>) {
        guard let connection = self.connection else { return }
        switch result {
        case .failure(let error):
            Log.warning("agent refused: hello failed", ["agent": self.agentName, "peer": self.address,
                                                        "error": "\(error)"])
            connection.close(error: error)
        case .success(let hello):
            self.counters.withLock { $0.hello = hello }
            self.isRegistered = true
            if self.context.registry.register(self) { self.context.metrics.tunnelReconnected() }
            Log.info("agent connected", [
                "agent": self.agentName, "session": self.id, "peer": self.address,
                "services": hello.services.map { "\($0.type)/\($0.name)" }.joined(separator: ","),
                "agentVersion": hello.agentVersion, "instance": self.context.instanceID,
                "certificateSerial": self.certificateSerial,
            ])
        }
    }
}

extension TunnelSession: HTTP2ConnectionDelegate {
    func http2ConnectionDidBecomeActive(_ connection: HTTP2Connection) {
        self.sendHello()
    }

    func http2Connection(_ connection: HTTP2Connection, didOpenStream streamID: Int32, headers: [HTTPField],
                         endStream: Bool) -> HTTP2StreamHandler? {
        nil
    }

    func http2Connection(_ connection: HTTP2Connection, didMeasurePing roundTrip: TimeInterval) {
        self.context.metrics.pingRTT(roundTrip)
    }

    func http2Connection(_ connection: HTTP2Connection, didReceiveGoAway lastStreamID: Int32) {
        // Out of the routing set at once (`AgentRegistry.leastBusySession` skips draining sessions): the agent's
        // session takes no new streams, whether it drains on purpose or its HTTP/2 guard refused the traffic. An
        // agent replaces such a tunnel with a new one; streams in flight finish here.
        self.counters.withLock { $0.isDraining = true }
        Log.info("agent is draining its tunnel", ["agent": self.agentName, "session": self.id])
    }

    func http2Connection(_ connection: HTTP2Connection, didSendGoAway errorCode: UInt32) {
        // Our own drain, or our HTTP/2 guard refused the agent's traffic: either way no new streams go here.
        let wasDraining = self.counters.withLock { counters in
            defer { counters.isDraining = true }
            return counters.isDraining
        }
        if !wasDraining {
            Log.warning("tunnel session sent GOAWAY; no new requests go to it", [
                "agent": self.agentName, "session": self.id, "errorCode": "\(errorCode)",
            ])
        }
    }

    func http2ConnectionDidClose(_ connection: HTTP2Connection, error: ConnectionError?) {
        self.connection = nil
        if self.isRegistered {
            self.context.registry.unregister(self)
            Log.info("agent disconnected", ["agent": self.agentName, "session": self.id,
                                            "error": error.map { "\($0)" } ?? "none"])
        }
    }
}

// Mutable state is confined to `queue`, except the counters behind their mutex.
extension TunnelSession: @unchecked Sendable {}

extension TunnelSession: RegisteredSession {}

/// The agent's answer to the hello, checked.
enum HelloResponse {
    /// The largest hello accepted.
    static let maximumSize = 1 << 20

    /// The hello in a collected response, or why there is none: not 200, too large, not the JSON of a hello.
    static func check(_ result: Result<CollectedResponse, TunnelClientError>,
                      agentName: String) -> Result<AgentHello, ConnectionError> {
        switch result {
        case .failure(.tooLarge):
            return .failure(.protocolViolation("hello larger than 1 MiB"))
        case .failure(let error):
            return .failure(.protocolViolation("hello failed: \(error)"))
        case .success(let response) where response.status != 200:
            return .failure(.protocolViolation("hello answered with status \(response.status)"))
        case .success(let response):
            do {
                let hello = try JSONDecoder().decode(AgentHello.self, from: Data(response.body))
                guard hello.name == agentName else {
                    return .failure(.protocolViolation(
                        "the hello names agent \(hello.name), the certificate agent \(agentName)"))
                }
                return .success(hello)
            } catch {
                return .failure(.protocolViolation("hello is not valid JSON: \(error)"))
            }
        }
    }
}
