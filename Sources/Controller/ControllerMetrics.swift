import Foundation
import Synchronization
import Tunnel

/// The controller's metric families, created once on a `MetricsRegistry`, with one typed method per event so
/// callers never repeat a metric name or label order.
final class ControllerMetrics: Sendable {
    /// Bounds for tunnel PING round trips, in seconds: 0.5 ms on a LAN to 5 s on a congested link.
    static let pingBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    let registry: MetricsRegistry
    private let requests: Counter
    private let requestDuration: Histogram
    private let tunnelBytes: Counter
    private let pingRoundTrip: Histogram
    private let flowBlockedSeconds: Counter
    private let reconnects: Counter
    private let authFailures: Counter
    private let userTimeouts: Counter
    /// Streams blocked on flow control right now, and when that number last changed.
    private let blocked = Mutex((count: 0, since: ContinuousClock.now))

    init(registry: MetricsRegistry = .shared) {
        self.registry = registry
        self.requests = registry.counter(
            "porthole_requests_total", help: "User requests finished, by agent, service type and HTTP status.",
            labels: ["agent", "service_type", "code"])
        self.requestDuration = registry.histogram(
            "porthole_request_duration_seconds",
            help: "Time from a user request's head to its response's end, by agent and service type.",
            labels: ["agent", "service_type"])
        self.tunnelBytes = registry.counter(
            "porthole_tunnel_bytes_total", help: "Payload bytes carried over agent tunnels, by direction.",
            labels: ["direction"])
        self.pingRoundTrip = registry.histogram(
            "porthole_tunnel_ping_rtt_seconds", help: "HTTP/2 PING round-trip time on agent tunnels.",
            buckets: Self.pingBuckets)
        self.flowBlockedSeconds = registry.counter(
            "porthole_stream_flow_blocked_seconds_total",
            help: "Seconds user streams spent stopped because the next hop had not consumed their data yet.")
        self.reconnects = registry.counter(
            "porthole_reconnects_total", help: "Tunnels opened by an agent name that had been connected before.")
        self.authFailures = registry.counter(
            "porthole_auth_failures_total", help: "Requests refused before routing, by reason.", labels: ["reason"])
        self.userTimeouts = registry.counter(
            "porthole_user_connection_timeouts_total",
            help: "User connections closed by a timeout, by which one (request_head, idle).", labels: ["timeout"])
    }

    /// A user connection was closed because `timeout` (`request_head`, `idle`) ran out.
    func userConnectionTimedOut(_ timeout: String) {
        self.userTimeouts.increment(labels: [timeout])
    }

    /// Registers the gauges read from `agents` at scrape time: agents, sessions and active streams.
    func observe(registry agents: AgentRegistry) {
        self.registry.gaugeFunction("porthole_agents_connected", help: "Agent names with at least one tunnel up.") {
            Double(agents.agentCount)
        }
        self.registry.gaugeFunction("porthole_tunnel_sessions", help: "Agent tunnels up, replicas counted apiece.") {
            Double(agents.sessionCount)
        }
        self.registry.gaugeFunction("porthole_streams_active", help: "Tunnel streams open across all agents.") {
            Double(agents.activeStreamCount)
        }
    }

    /// A user request got its final status `code` after `seconds`.
    func requestFinished(agent: String, serviceType: String, code: Int, seconds: Double) {
        self.requests.increment(labels: [agent, serviceType, String(code)])
        self.requestDuration.observe(max(0, seconds), labels: [agent, serviceType])
    }

    /// `count` payload bytes went down a tunnel.
    func bytes(toAgent count: Int) {
        self.tunnelBytes.increment(labels: ["to_agent"], by: Double(max(0, count)))
    }

    /// `count` payload bytes came up a tunnel.
    func bytes(fromAgent count: Int) {
        self.tunnelBytes.increment(labels: ["from_agent"], by: Double(max(0, count)))
    }

    /// A PING was answered after `seconds`.
    func pingRTT(_ seconds: TimeInterval) {
        self.pingRoundTrip.observe(max(0, seconds))
    }

    /// A stream was blocked on flow control for `seconds`, measured by the caller.
    func flowBlocked(seconds: Double) {
        self.flowBlockedSeconds.increment(by: max(0, seconds))
    }

    /// A stream stopped for flow control; pair with `flowBlockedEnded()`. Overlapping streams each count.
    func flowBlockedStarted() {
        self.changeBlockedCount(by: 1)
    }

    /// A stream that `flowBlockedStarted()` reported may move again.
    func flowBlockedEnded() {
        self.changeBlockedCount(by: -1)
    }

    /// Adds the time since the last change times the streams blocked over it, then applies `delta`.
    private func changeBlockedCount(by delta: Int) {
        let now = ContinuousClock.now
        let elapsed = self.blocked.withLock { blocked in
            let elapsed = Double(blocked.count) * Self.seconds(blocked.since.duration(to: now))
            blocked.count = max(0, blocked.count + delta)
            blocked.since = now
            return elapsed
        }
        if elapsed > 0 { self.flowBlockedSeconds.increment(by: elapsed) }
    }

    /// A tunnel came up for an agent name that had been connected before in this process.
    func tunnelReconnected() {
        self.reconnects.increment()
    }

    /// A request was refused before routing; `reason` is a short label such as `token` or `wrong_identity`.
    func authFailure(reason: String) {
        self.authFailures.increment(labels: [reason])
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
