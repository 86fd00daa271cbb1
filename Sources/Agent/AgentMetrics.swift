import Foundation
import Tunnel

/// The agent's metric families, named like the controller's where they mean the same.
final class AgentMetrics: Sendable {
    let registry: MetricsRegistry
    private let reconnects: Counter
    private let requests: Counter
    private let duration: Histogram
    private let pingRoundTrip: Histogram

    init(registry: MetricsRegistry) {
        self.registry = registry
        self.reconnects = registry.counter("porthole_reconnects_total", help: "Tunnel redials after a tunnel was lost.")
        self.requests = registry.counter("porthole_requests_total", help: "Requests carried out against services.",
                                         labels: ["service_type", "code"])
        self.duration = registry.histogram("porthole_request_duration_seconds",
                                           help: "Time from stream open to the backend's last byte.",
                                           labels: ["service_type"])
        self.pingRoundTrip = registry.histogram("porthole_tunnel_ping_rtt_seconds",
                                                help: "HTTP/2 PING round-trip time on tunnels.")
    }

    /// Registers gauges read at scrape time from the tunnels and the controller pools' replica counts.
    func observe(tunnels: @escaping @Sendable () -> [AgentTunnel],
                 replicas: @escaping @Sendable () -> [(expected: Int, connected: Int)]) {
        self.registry.gaugeFunction(
            "porthole_agent_controllers_expected",
            help: "Distinct controller replicas the agent should hold a tunnel to (announced, else one per address)."
        ) {
            Double(replicas().reduce(0) { $0 + $1.expected })
        }
        self.registry.gaugeFunction(
            "porthole_agent_controllers_connected", help: "Distinct controller replicas with a tunnel up."
        ) {
            Double(replicas().reduce(0) { $0 + $1.connected })
        }
        self.registry.gaugeFunction("porthole_tunnel_sessions", help: "Tunnels up (hello answered).") {
            Double(tunnels().filter(\.isUp).count)
        }
        self.registry.gaugeFunction("porthole_streams_active", help: "Streams in flight on all tunnels.") {
            Double(tunnels().reduce(0) { $0 + $1.activeStreams })
        }
    }

    func reconnected() { self.reconnects.increment() }

    func pingRTT(_ seconds: Double) { self.pingRoundTrip.observe(seconds) }

    func requestFinished(serviceType: String, code: Int, seconds: Double) {
        self.requests.increment(labels: [serviceType, "\(code)"])
        self.duration.observe(seconds, labels: [serviceType])
    }
}
