/// The agent's default tunnel timing and window, shared with the bench's simulated agents so both dial alike.
package enum AgentTunnelDefaults {
    /// Seconds between HTTP/2 PINGs on each tunnel.
    package static let pingIntervalSeconds: Double = 10
    /// Seconds without a PING answer after which the agent drops the tunnel and reconnects.
    package static let pingTimeoutSeconds: Double = 30
    /// First reconnect delay ceiling, in seconds.
    package static let reconnectMinSeconds: Double = 0.5
    /// Largest reconnect delay ceiling, in seconds.
    package static let reconnectMaxSeconds: Double = 30
    /// Seconds a tunnel must stay up before the backoff returns to `reconnectMinSeconds`.
    package static let reconnectResetAfterSeconds: Double = 60
    /// HTTP/2 flow-control window per tunnel stream, in bytes.
    package static let streamWindowBytes: Int = 4 << 20
}
