import Foundation
import Tunnel

/// What `porthole-bench-agents` was asked to do.
struct BenchOptions {
    var controller = ListenAddress(host: "127.0.0.1", port: 8441)
    var serverName: String?
    var caCertFile = ""
    var caKeyFile = ""
    var trustDomain = "porthole.local"
    var count = 1
    var namePrefix = "bench"
    var concurrency = 64
    var reportInterval: TimeInterval = 0.05
    var reconnectMinSeconds = AgentTunnelDefaults.reconnectMinSeconds
    var reconnectMaxSeconds = AgentTunnelDefaults.reconnectMaxSeconds
    var pingIntervalSeconds = AgentTunnelDefaults.pingIntervalSeconds
    var pingTimeoutSeconds = AgentTunnelDefaults.pingTimeoutSeconds
    var streamWindowBytes = AgentTunnelDefaults.streamWindowBytes

    static let parser = CommandLineParser(
        command: "porthole-bench-agents",
        summary: """
            Opens COUNT idle agent tunnels to one controller from this one process, each with its own agent \
            certificate issued here from the CA, answers the controller's hello like porthole-agent and redials \
            with the agent's jittered backoff. Prints one JSON line on stdout whenever the number of tunnels up \
            changes. Reads commands on stdin: "target N" opens more tunnels, "quit" exits.
            """,
        options: [
            .value("--controller", "HOST:PORT", help: "the controller's agent listener", default: "127.0.0.1:8441"),
            .value("--controller-server-name", "NAME", help: "name to verify in the controller's certificate",
                   default: "the controller's host"),
            .value("--ca-cert", "FILE", help: "CA certificate (PEM): trusted, and issuer of the agents' certificates"),
            .value("--ca-key", "FILE", help: "CA key (PEM), to issue one agent certificate per tunnel"),
            .value("--trust-domain", "DOMAIN", help: "SPIFFE trust domain of the agent identities",
                   default: "porthole.local"),
            .value("--count", "N", help: "tunnels to open at start", default: "1"),
            .value("--name-prefix", "PREFIX", help: "agents are named PREFIX-00001 …", default: "bench"),
            .value("--concurrency", "N", help: "first dials in flight at once while opening", default: "64"),
            .value("--reconnect-min", "SECONDS", help: "backoff floor, as the agent's reconnectMinSeconds",
                   default: "\(AgentTunnelDefaults.reconnectMinSeconds)"),
            .value("--reconnect-max", "SECONDS", help: "backoff ceiling, as the agent's reconnectMaxSeconds",
                   default: "\(AgentTunnelDefaults.reconnectMaxSeconds)"),
        ])

    static var usage: String { Self.parser.usage }

    init() {}

    init(arguments: [String]) throws {
        let flags = try Self.parser.parse(arguments)
        if let value = try flags.listenAddress("--controller") { self.controller = value }
        self.serverName = flags.string("--controller-server-name")
        guard let caCert = flags.string("--ca-cert"), let caKey = flags.string("--ca-key") else {
            throw ConfigurationError.usage("--ca-cert and --ca-key are required")
        }
        self.caCertFile = caCert
        self.caKeyFile = caKey
        if let value = flags.string("--trust-domain") { self.trustDomain = value }
        if let value = try flags.int("--count") { self.count = value }
        if let value = flags.string("--name-prefix") { self.namePrefix = value }
        if let value = try flags.int("--concurrency") { self.concurrency = max(1, value) }
        if let value = try flags.double("--reconnect-min") { self.reconnectMinSeconds = value }
        if let value = try flags.double("--reconnect-max") { self.reconnectMaxSeconds = value }
        guard self.count >= 0 else { throw ConfigurationError.usage("--count must be 0 or more") }
    }
}
