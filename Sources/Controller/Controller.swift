import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The controller process: four listeners around one context.
final class Controller {
    let context: ControllerContext
    private let listeners: [Listener]
    /// Rebuilt when the credentials change, so it mints with the CA in force.
    private let controlAPI: Mutex<ControlAPI>
    private let metricsEndpoint: MetricsEndpoint
    /// True once every listener accepts.
    private let readiness: Readiness
    /// Created in `start`: a source must not be released before it was resumed.
    private var reloadTimer: DispatchSourceTimer?

    init(configuration: ControllerConfiguration) throws {
        // Bind first: with port 0 the service URL in issued kubeconfigs needs the port the kernel chose.
        let listeners = [
            try Listener(name: "agent", host: configuration.agentListen.host, port: configuration.agentListen.port),
            try Listener(name: "service", host: configuration.serviceListen.host,
                         port: configuration.serviceListen.port),
            try Listener(name: "control", host: configuration.controlListen.host,
                         port: configuration.controlListen.port),
            try Listener(name: "metrics", host: configuration.metricsListen.host,
                         port: configuration.metricsListen.port),
        ]
        self.listeners = listeners
        let registry = MetricsRegistry()
        let metrics = ControllerMetrics(registry: registry)
        let serviceURL = configuration.serviceURL
            ?? "https://\(Self.urlHost(configuration.serverNames.first ?? "localhost")):\(listeners[1].address.port)"
        let context = try ControllerContext(configuration: configuration, metrics: metrics, serviceURL: serviceURL)
        self.context = context
        self.controlAPI = Mutex(Self.makeControlAPI(context))
        let readiness = Readiness()
        self.readiness = readiness
        self.metricsEndpoint = MetricsEndpoint(registry: registry, isReady: { readiness.isReady })
        metrics.observe(registry: context.registry)
    }

    private static func makeControlAPI(_ context: ControllerContext) -> ControlAPI {
        ControlAPI(authority: context.credentials.authority, trustDomain: context.configuration.trustDomain,
                   serviceURL: context.serviceURL, registry: context.registry, configuration: context.configuration,
                   metrics: context.metrics)
    }

    /// Checks the CA and server certificate files; new connections use new ones, open ones keep theirs.
    func reloadIfChanged() {
        if self.context.reloadCredentialsIfChanged() {
            let api = Self.makeControlAPI(self.context)
            self.controlAPI.withLock { $0 = api }
        }
    }

    /// Reopens the audit log (after rotation).
    func reopenAuditLog() {
        self.context.audit?.reopen()
    }

    static func urlHost(_ name: String) -> String {
        name.contains(":") ? "[\(name)]" : name
    }

    func start() {
        let context = self.context
        context.replicas.start()
        let metricsEndpoint = self.metricsEndpoint
        for listener in self.listeners {
            switch listener.name {
            case "agent":
                listener.start { fd, queue in Self.acceptAgent(fd: fd, queue: queue, context: context) }
            case "service":
                listener.start { fd, queue in Self.acceptUser(fd: fd, queue: queue, context: context) }
            case "control":
                listener.start { [self] fd, queue in
                    let api = self.controlAPI.withLock { $0 }
                    Self.acceptSimple(fd: fd, queue: queue, tls: context.credentials.controlTLS, listener: "control",
                                      handler: api.handle)
                }
            default:
                listener.start { fd, queue in
                    Self.acceptSimple(fd: fd, queue: queue, tls: nil, listener: "metrics",
                                      handler: metricsEndpoint.handle)
                }
            }
            Log.info("listening", ["listener": listener.name, "address": "\(listener.address)"])
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "porthole.controller.reload"))
        timer.schedule(deadline: .now() + self.context.configuration.reloadCheckSeconds,
                       repeating: self.context.configuration.reloadCheckSeconds)
        timer.setEventHandler { [self] in self.reloadIfChanged() }
        timer.resume()
        self.reloadTimer = timer
        self.context.gateway?.checkPeriodically(every: self.context.configuration.reloadCheckSeconds)
        self.readiness.set(true)
        Log.info("controller started", ["instance": self.context.instanceID, "serviceURL": self.context.serviceURL,
                                        "version": portholeVersion,
                                        "replicas": self.context.replicas.current.map { "\($0)" } ?? "-"])
    }

    /// Stops accepting, sends GOAWAY on every tunnel, waits for streams up to the drain timeout.
    func drain() async {
        self.readiness.set(false)
        for listener in self.listeners where listener.name != "metrics" { listener.stop() }
        let sessions = self.context.registry.allSessions
        for session in sessions { session.drain() }
        let deadline = Date().addingTimeInterval(self.context.configuration.drainTimeoutSeconds)
        // Done when no tunnel stream is open, no response is still crossing to its user's connection, and every
        // connection's socket took what was written to it: exiting earlier would cut the last responses short.
        while Date() < deadline, self.context.registry.activeStreamCount > 0 || TunnelStream.undeliveredEventCount > 0
            || Connection.unsentByteCount > 0
        {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        Log.info("controller drained", ["streamsLeft": "\(self.context.registry.activeStreamCount)",
                                        "unsentBytes": "\(Connection.unsentByteCount)"])
    }

    private static func acceptAgent(fd: Int32, queue: DispatchQueue, context: ControllerContext) {
        do {
            let connection = try Connection.accepted(fd: fd, tls: context.credentials.agentTLS, queue: queue)
            connection.start(delegate: HandshakeWaiter(listener: "agent") { connection in
                let certificate = connection.tls?.peerCertificate
                let identity = certificate.flatMap {
                    EndpointIdentity.from(certificate: $0, trustDomain: context.configuration.trustDomain)
                }
                guard case .agent(let name)? = identity else {
                    Log.warning("agent listener refused a certificate that is not an agent's", [
                        "peer": connection.peerAddress.map { "\($0)" } ?? "?",
                        "identity": identity.map { "\($0)" } ?? "none",
                    ])
                    connection.close(error: .protocolViolation("not an agent identity"))
                    return
                }
                do {
                    let session = try TunnelSession(agentName: name, connection: connection, context: context)
                    session.start()
                } catch {
                    Log.error("starting a tunnel session failed", ["agent": name, "error": "\(error)"])
                    connection.close()
                }
            })
        } catch {
            close(fd)
            Log.error("accepting an agent failed", ["error": "\(error)"])
        }
    }

    /// A user connection: the TLS handshake and the first request head share `requestHeadTimeoutSeconds`.
    private static func acceptUser(fd: Int32, queue: DispatchQueue, context: ControllerContext) {
        let acceptedAt = DispatchTime.now().uptimeNanoseconds
        do {
            let connection = try Connection.accepted(fd: fd, tls: context.credentials.serviceTLS, queue: queue)
            let waiter = HandshakeWaiter(listener: "service") { connection in
                if connection.tls?.negotiatedALPN == "h2" {
                    do {
                        try UserHTTP2Connection(connection: connection, context: context).start()
                    } catch {
                        Log.error("starting an HTTP/2 session failed", ["error": "\(error)"])
                        connection.close()
                    }
                } else {
                    UserHTTP1Connection(connection: connection, context: context, acceptedAt: acceptedAt).start()
                }
            }
            connection.start(delegate: waiter, handshakeTimeout: context.configuration.requestHeadTimeoutSeconds)
        } catch {
            close(fd)
            Log.error("accepting a user failed", ["error": "\(error)"])
        }
    }

    private static func acceptSimple(fd: Int32, queue: DispatchQueue, tls: TLSContext?, listener: String,
                                     handler: @escaping @Sendable (SimpleRequest) -> SimpleResponse) {
        do {
            let connection = try Connection.accepted(fd: fd, tls: tls, queue: queue)
            SimpleHTTPServer.serve(connection: connection, listener: listener, handler: handler)
        } catch {
            close(fd)
            Log.error("accepting a connection failed", ["listener": listener, "error": "\(error)"])
        }
    }
}

// Every stored property is immutable or thread-safe; the reload timer is configured once, in `start`.
extension Controller: @unchecked Sendable {}
