import Dispatch
import Foundation
import Tunnel

/// The agent process: its identity, its services, one `ControllerPool` per configured controller, and an
/// optional metrics listener.
final class Agent: Sendable {
    let context: AgentContext
    let pools: [ControllerPool]
    private let metricsListener: Listener?
    private let metricsEndpoint: MetricsEndpoint

    init(configuration: AgentConfiguration) throws {
        let identity = try AgentIdentity(certFile: configuration.certFile, keyFile: configuration.keyFile,
                                         caFile: configuration.caCertFile)
        let file = try ServicesFile.load(path: configuration.servicesFile)
        let services = try file.services.map { try BackendService(definition: $0) }
        let metrics = AgentMetrics(registry: MetricsRegistry())
        let context = AgentContext(identity: identity, services: services, annotations: configuration.annotations,
                                   configuration: configuration, metrics: metrics)
        self.context = context
        let pools = configuration.controllers.map { ControllerPool(controller: $0, context: context) }
        self.pools = pools
        metrics.observe(tunnels: { pools.flatMap(\.allTunnels) }, replicas: { pools.map(\.replicaCounts) })
        self.metricsEndpoint = MetricsEndpoint(registry: metrics.registry,
                                               notReadyReason: "no tunnel to any controller is up") {
            pools.contains { $0.allTunnels.contains(where: \.isUp) }
        }
        self.metricsListener = try configuration.metricsListen.map {
            try Listener(name: "metrics", host: $0.host, port: $0.port)
        }
    }

    var tunnels: [AgentTunnel] { self.pools.flatMap(\.allTunnels) }

    func start() {
        Log.info("agent starting", ["agent": self.context.name, "version": portholeVersion,
                                    "services": self.context.services.keys.sorted().joined(separator: ","),
                                    "controllers": self.pools.map { "\($0.controller)" }.joined(separator: ",")])
        for pool in self.pools { pool.start() }
        if let listener = self.metricsListener {
            let endpoint = self.metricsEndpoint
            listener.start { fd, queue in
                do {
                    let connection = try Connection.accepted(fd: fd, tls: nil, queue: queue)
                    SimpleHTTPServer.serve(connection: connection, listener: "metrics", handler: endpoint.handle)
                } catch {
                    close(fd)
                }
            }
            Log.info("listening", ["listener": "metrics", "address": "\(listener.address)"])
        }
    }

    /// Checks the certificate files now and every `reloadCheckSeconds`; a change reconnects every tunnel with it.
    func reloadIfChanged() {
        guard self.context.identity.reloadIfChanged() else { return }
        for tunnel in self.tunnels { tunnel.reconnectWithNewIdentity() }
    }

    /// Runs until SIGTERM or SIGINT (SIGHUP reloads the certificate), then drains.
    func run() async {
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP])
        let interval = self.context.configuration.reloadCheckSeconds
        let ticker = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "porthole.agent.reload"))
        ticker.schedule(deadline: .now() + interval, repeating: interval)
        ticker.setEventHandler { [self] in self.reloadIfChanged() }
        ticker.resume()
        var received = SIGHUP
        while received == SIGHUP {
            received = await signals.next()
            if received == SIGHUP {
                Log.info("SIGHUP: checking the certificate files")
                self.reloadIfChanged()
            }
        }
        ticker.cancel()
        Log.info("agent draining", ["signal": "\(received)"])
        for pool in self.pools { pool.drain() }
        let deadline = Date().addingTimeInterval(self.context.configuration.drainTimeoutSeconds)
        while Date() < deadline, self.tunnels.contains(where: { $0.activeStreams > 0 }) {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        Log.info("agent stopped", ["streamsLeft": "\(self.tunnels.reduce(0) { $0 + $1.activeStreams })"])
    }
}
