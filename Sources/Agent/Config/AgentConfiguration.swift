import Foundation
import Tunnel

/// Everything `porthole-agent` needs to start: which controllers to dial, its credentials, its services file,
/// timing and limits.
///
/// Built by `load(arguments:)` in three layers: defaults, then the JSON file named by `--config`, then flags.
/// Every field is documented in docs/configuration.md.
package struct AgentConfiguration: Codable, Sendable, Equatable {
    /// Controller addresses to keep a tunnel to, each `HOST:PORT`; the agent dials every one. Required.
    package var controllers: [ListenAddress] = []
    /// The agent's PEM certificate (URI SAN `spiffe://TRUST/agent/NAME`); required.
    package var certFile: String = ""
    /// Private key for `certFile`; required.
    package var keyFile: String = ""
    /// PEM CA certificate the controllers' server certificates must chain to; required.
    package var caCertFile: String = ""
    /// JSON file listing the services this agent serves (see `ServicesFile`); required.
    package var servicesFile: String = ""
    /// Labels sent to the controller in the hello and shown in the agent list.
    package var annotations: [String: String] = [:]
    /// Lowest log level written: `debug`, `info`, `warning` or `error`.
    package var logLevel: String = "info"
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; nil serves none.
    package var metricsListen: ListenAddress?
    /// Seconds between HTTP/2 PINGs on each tunnel.
    package var pingIntervalSeconds: Double = AgentTunnelDefaults.pingIntervalSeconds
    /// Seconds without a PING answer after which the agent drops the tunnel and reconnects.
    package var pingTimeoutSeconds: Double = AgentTunnelDefaults.pingTimeoutSeconds
    /// First reconnect delay ceiling, in seconds; each failure doubles it, and the delay is random below it.
    package var reconnectMinSeconds: Double = AgentTunnelDefaults.reconnectMinSeconds
    /// Largest reconnect delay ceiling, in seconds.
    package var reconnectMaxSeconds: Double = AgentTunnelDefaults.reconnectMaxSeconds
    /// Seconds a tunnel must stay up before the backoff returns to `reconnectMinSeconds`.
    package var reconnectResetAfterSeconds: Double = AgentTunnelDefaults.reconnectResetAfterSeconds
    /// HTTP/2 flow-control window per tunnel stream, in bytes.
    package var streamWindowBytes: Int = AgentTunnelDefaults.streamWindowBytes
    /// Name sent as SNI and required in the controller's certificate; nil uses each controller's host.
    package var controllerServerName: String?
    /// Seconds between DNS look-ups of each controller name; every A/AAAA record gets its own tunnel.
    package var resolveIntervalSeconds: Double = 30
    /// On SIGTERM, seconds to let in-flight streams finish after telling the controllers to stop sending.
    package var drainTimeoutSeconds: Double = 30
    /// Seconds between checks of the certificate, key and CA files; a change reconnects with the new identity.
    package var reloadCheckSeconds: Double = 5

    /// The defaults, which do not validate until controllers and credentials are set.
    package init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case controllers, certFile, keyFile, caCertFile, servicesFile, annotations, logLevel, metricsListen
        case pingIntervalSeconds, pingTimeoutSeconds, reconnectMinSeconds, reconnectMaxSeconds
        case reconnectResetAfterSeconds, streamWindowBytes, controllerServerName, resolveIntervalSeconds
        case drainTimeoutSeconds, reloadCheckSeconds
    }

    /// Decodes a config file; absent fields keep their defaults, unknown fields are an error.
    package init(from decoder: any Decoder) throws {
        try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func read<Value: Decodable>(_ key: CodingKeys, into value: inout Value) throws {
            if let decoded = try container.decodeIfPresent(Value.self, forKey: key) { value = decoded }
        }
        try read(.controllers, into: &self.controllers)
        try read(.certFile, into: &self.certFile)
        try read(.keyFile, into: &self.keyFile)
        try read(.caCertFile, into: &self.caCertFile)
        try read(.servicesFile, into: &self.servicesFile)
        try read(.annotations, into: &self.annotations)
        try read(.logLevel, into: &self.logLevel)
        self.metricsListen = try container.decodeIfPresent(ListenAddress.self, forKey: .metricsListen)
        try read(.pingIntervalSeconds, into: &self.pingIntervalSeconds)
        try read(.pingTimeoutSeconds, into: &self.pingTimeoutSeconds)
        try read(.reconnectMinSeconds, into: &self.reconnectMinSeconds)
        try read(.reconnectMaxSeconds, into: &self.reconnectMaxSeconds)
        try read(.reconnectResetAfterSeconds, into: &self.reconnectResetAfterSeconds)
        try read(.streamWindowBytes, into: &self.streamWindowBytes)
        self.controllerServerName = try container.decodeIfPresent(String.self, forKey: .controllerServerName)
        try read(.resolveIntervalSeconds, into: &self.resolveIntervalSeconds)
        try read(.drainTimeoutSeconds, into: &self.drainTimeoutSeconds)
        try read(.reloadCheckSeconds, into: &self.reloadCheckSeconds)
    }

    /// The command line this configuration reads.
    package static let parser: CommandLineParser = {
        let defaults = AgentConfiguration()
        return CommandLineParser(
            command: "porthole-agent",
            summary: """
                Keeps a tunnel to every controller and serves the services in --services through it. Flags \
                override the --config file, which overrides the defaults.
                """,
            options: [
                .value("--config", "FILE", help: "JSON configuration file; flags override its values."),
                .value(
                    "--controller", "HOST:PORT", help: "Controller agent listener to dial. Required.",
                    repeatable: true),
                .value("--cert", "FILE", help: "Agent certificate (PEM). Required."),
                .value("--key", "FILE", help: "Agent private key (PEM). Required."),
                .value("--ca-cert", "FILE", help: "CA certificate (PEM) the controller must chain to. Required."),
                .value("--services", "FILE", help: "Services file (JSON). Required."),
                .value("--annotation", "KEY=VALUE", help: "Label sent to the controller.", repeatable: true),
                .value("--log-level", "LEVEL", help: "debug, info, warning or error.", default: defaults.logLevel),
                .value(
                    "--metrics-listen", "HOST:PORT", help: "Serve /metrics, /healthz, /readyz here.", default: "off"),
                .value(
                    "--ping-interval", "SECONDS", help: "Seconds between tunnel PINGs.",
                    default: ConfigurationValidation.format(defaults.pingIntervalSeconds)),
                .value(
                    "--ping-timeout", "SECONDS", help: "Seconds without a PING answer before reconnecting.",
                    default: ConfigurationValidation.format(defaults.pingTimeoutSeconds)),
                .value(
                    "--controller-server-name", "NAME", help: "Expected name in the controllers' certificates (SNI).",
                    default: "host of each --controller"),
                .value(
                    "--reconnect-min", "SECONDS", help: "First reconnect delay ceiling (full jitter below it).",
                    default: ConfigurationValidation.format(defaults.reconnectMinSeconds)),
                .value(
                    "--reconnect-max", "SECONDS", help: "Largest reconnect delay ceiling.",
                    default: ConfigurationValidation.format(defaults.reconnectMaxSeconds)),
                .value(
                    "--resolve-interval", "SECONDS", help: "Seconds between DNS look-ups of controller names.",
                    default: ConfigurationValidation.format(defaults.resolveIntervalSeconds)),
                .value(
                    "--drain-timeout", "SECONDS", help: "On SIGTERM, how long in-flight streams may finish.",
                    default: ConfigurationValidation.format(defaults.drainTimeoutSeconds)),
                .value(
                    "--reload-check", "SECONDS", help: "Seconds between checks of the certificate files for changes.",
                    default: ConfigurationValidation.format(defaults.reloadCheckSeconds)),
            ])
    }()

    /// The `--help` text.
    package static var usage: String { Self.parser.usage }

    /// Defaults, overridden by the `--config` file, overridden by flags; then validated.
    ///
    /// Relative paths in the file are resolved against the file's directory. `--controller` replaces the file's
    /// list; `--annotation` adds keys to the file's annotations, replacing equal keys.
    ///
    /// - Parameter arguments: the command line without the executable name.
    /// - Throws: `ConfigurationError` (`.helpRequested` for `-h`/`--help`).
    package static func load(arguments: [String]) throws -> AgentConfiguration {
        let flags = try Self.parser.parse(arguments)
        var configuration = AgentConfiguration()
        if let path = flags.string("--config") {
            configuration = try ConfigurationFile.read(AgentConfiguration.self, path: path)
            configuration.resolvePaths(relativeTo: ConfigurationFile.directory(of: path))
        }
        try configuration.apply(flags)
        try configuration.validate()
        return configuration
    }

    private mutating func resolvePaths(relativeTo directory: String) {
        self.certFile = ConfigurationFile.resolve(self.certFile, relativeTo: directory)
        self.keyFile = ConfigurationFile.resolve(self.keyFile, relativeTo: directory)
        self.caCertFile = ConfigurationFile.resolve(self.caCertFile, relativeTo: directory)
        self.servicesFile = ConfigurationFile.resolve(self.servicesFile, relativeTo: directory)
    }

    private mutating func apply(_ flags: CommandLineParser.Arguments) throws {
        if flags.isPresent("--controller") { self.controllers = try flags.listenAddresses("--controller") }
        if let value = flags.string("--cert") { self.certFile = value }
        if let value = flags.string("--key") { self.keyFile = value }
        if let value = flags.string("--ca-cert") { self.caCertFile = value }
        if let value = flags.string("--services") { self.servicesFile = value }
        self.annotations.merge(try flags.keyValuePairs("--annotation")) { _, flag in flag }
        if let value = flags.string("--log-level") { self.logLevel = value }
        if let value = try flags.listenAddress("--metrics-listen") { self.metricsListen = value }
        if let value = try flags.double("--ping-interval") { self.pingIntervalSeconds = value }
        if let value = try flags.double("--ping-timeout") { self.pingTimeoutSeconds = value }
        if let value = flags.string("--controller-server-name") { self.controllerServerName = value }
        if let value = try flags.double("--reconnect-min") { self.reconnectMinSeconds = value }
        if let value = try flags.double("--reconnect-max") { self.reconnectMaxSeconds = value }
        if let value = try flags.double("--resolve-interval") { self.resolveIntervalSeconds = value }
        if let value = try flags.double("--drain-timeout") { self.drainTimeoutSeconds = value }
        if let value = try flags.double("--reload-check") { self.reloadCheckSeconds = value }
    }

    /// Checks every field; the error names the first field at fault and how to set it.
    package func validate() throws {
        func fail(_ field: String, _ reason: String) -> ConfigurationError { .invalid(field: field, reason: reason) }
        guard !self.controllers.isEmpty else { throw fail("controllers", "at least one is required (--controller)") }
        for (index, controller) in self.controllers.enumerated() {
            guard controller.port != 0 else { throw fail("controllers[\(index)]", "port 0 cannot be dialed") }
            guard !controller.isWildcard else {
                throw fail("controllers[\(index)]", "\(controller) has no host to dial")
            }
        }
        guard !self.certFile.isEmpty else { throw fail("certFile", "required (--cert FILE)") }
        guard !self.keyFile.isEmpty else { throw fail("keyFile", "required (--key FILE)") }
        guard !self.caCertFile.isEmpty else { throw fail("caCertFile", "required (--ca-cert FILE)") }
        guard !self.servicesFile.isEmpty else { throw fail("servicesFile", "required (--services FILE)") }
        for key in self.annotations.keys.sorted() where !ConfigurationValidation.isAnnotationKey(key) {
            throw fail("annotations", "key \"\(key)\" must be letters, digits, '.', '_', '-', optionally prefix/")
        }
        try ConfigurationValidation.checkLogLevel(self.logLevel)
        try ConfigurationValidation.checkPing(interval: self.pingIntervalSeconds, timeout: self.pingTimeoutSeconds)
        try ConfigurationValidation.checkPositive(self.reconnectMinSeconds, field: "reconnectMinSeconds")
        guard self.reconnectMaxSeconds.isFinite, self.reconnectMaxSeconds >= self.reconnectMinSeconds else {
            throw fail(
                "reconnectMaxSeconds",
                "must be at least reconnectMinSeconds (\(ConfigurationValidation.format(self.reconnectMinSeconds)))")
        }
        try ConfigurationValidation.checkPositive(self.reconnectResetAfterSeconds, field: "reconnectResetAfterSeconds")
        try ConfigurationValidation.checkPositive(self.resolveIntervalSeconds, field: "resolveIntervalSeconds")
        try ConfigurationValidation.checkPositive(self.drainTimeoutSeconds, field: "drainTimeoutSeconds")
        try ConfigurationValidation.checkPositive(self.reloadCheckSeconds, field: "reloadCheckSeconds")
        try ConfigurationValidation.checkStreamWindow(self.streamWindowBytes)
        if let name = self.controllerServerName, !ConfigurationValidation.isHostName(name) {
            throw fail("controllerServerName", "\"\(name)\" is not a DNS name or IP address")
        }
    }

    /// The parsed log level; valid after `validate()`.
    package var level: LogLevel { LogLevel(name: self.logLevel) ?? .info }

    /// The name to send as SNI and verify in `controller`'s certificate.
    package func serverName(for controller: ListenAddress) -> String {
        self.controllerServerName ?? controller.host
    }
}
