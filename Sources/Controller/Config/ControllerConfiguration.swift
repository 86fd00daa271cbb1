import Foundation
import Tunnel

/// Everything `porthole-controller` needs to start: its CA, listeners, timing and limits.
///
/// Built by `load(arguments:)` in three layers: defaults, then the JSON file named by `--config`, then flags.
/// Every field is documented in docs/configuration.md.
package struct ControllerConfiguration: Codable, Sendable, Equatable {
    /// PEM certificate of the CA that signs every identity; required.
    package var caCertFile: String = ""
    /// PEM private key of that CA, used to mint credentials; required.
    package var caKeyFile: String = ""
    /// DNS names (or IP addresses) the controller's own server certificate carries when it issues one itself.
    package var serverNames: [String] = ["localhost"]
    /// PEM server certificate to present instead of issuing one; needs `serverKeyFile`.
    package var serverCertFile: String?
    /// Private key for `serverCertFile`.
    package var serverKeyFile: String?
    /// Where agents connect (mTLS, agent identities).
    package var agentListen = ListenAddress(host: "0.0.0.0", port: 8441)
    /// Where users and tools connect (TLS; service identities or bearer tokens).
    package var serviceListen = ListenAddress(host: "0.0.0.0", port: 8443)
    /// Where operators call the control API (mTLS, control identities).
    package var controlListen = ListenAddress(host: "0.0.0.0", port: 8444)
    /// Where `/metrics`, `/healthz` and `/readyz` are served (plain HTTP).
    package var metricsListen = ListenAddress(host: "0.0.0.0", port: 9090)
    /// `https://…` URL users reach the service listener at, written into kubeconfigs; nil derives it from the
    /// first server name and the service listener's bound port (see `serviceURL(boundPort:)`).
    package var serviceURL: String?
    /// The SPIFFE trust domain in every identity the CA issues and accepts.
    package var trustDomain: String = "porthole.local"
    /// Lowest log level written: `debug`, `info`, `warning` or `error`.
    package var logLevel: String = "info"
    /// Seconds between HTTP/2 PINGs on each tunnel.
    package var pingIntervalSeconds: Double = 10
    /// Seconds without a PING answer after which a tunnel is dead; more than `pingIntervalSeconds`.
    package var pingTimeoutSeconds: Double = 30
    /// Names this replica in logs, metrics and agent sessions; nil means `makeInstanceID()` at start-up.
    package var instanceID: String?
    /// How many controller replicas serve, announced to agents in the hello so that an agent behind one
    /// load-balanced name dials until it holds a tunnel to each; nil announces none (unless `replicasFromDNS`).
    package var replicaCount: Int?
    /// A DNS name whose A/AAAA records are the replicas (a headless Service); its record count is announced, looked
    /// up every `replicasResolveIntervalSeconds`. Excludes `replicaCount`.
    package var replicasFromDNS: String?
    /// Seconds between look-ups of `replicasFromDNS`.
    package var replicasResolveIntervalSeconds: Double = 30
    /// Seconds a shutting-down controller lets streams finish after GOAWAY; 0 closes at once.
    package var drainTimeoutSeconds: Double = 30
    /// Seconds between checks of the CA and server certificate files; changed files are loaded for new connections.
    package var reloadCheckSeconds: Double = 5
    /// HTTP/2 flow-control window per tunnel stream, in bytes; bounds memory per stream.
    package var streamWindowBytes: Int = 4 << 20
    /// Largest request or response header block accepted, in bytes.
    package var maxHeaderBytes: Int = 64 << 10
    /// Seconds a user connection has, from accept (TLS handshake included) or from the first byte after idling,
    /// to send a complete HTTP/1.1 request head.
    package var requestHeadTimeoutSeconds: Double = 10
    /// Seconds a user connection may sit with nothing in progress (HTTP/1.1 between requests, HTTP/2 with no
    /// open stream) before it is closed (HTTP/2: GOAWAY first).
    package var idleTimeoutSeconds: Double = 60
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to each user HTTP/2 connection.
    package var maxConcurrentStreamsPerConnection: Int = 128
    /// HTTP/2 connection-level receive window of each user connection, in bytes: the most request body one
    /// user connection can have buffered in the controller, however many streams it opens.
    package var userConnectionWindowBytes: Int = 16 << 20
    /// Lifetime of an issued kubeconfig's client certificate when the request gives no `ttl`.
    package var kubeconfigDefaultTTLSeconds: Int = 8 * 3600
    /// Longest kubeconfig lifetime a request may ask for.
    package var kubeconfigMaxTTLSeconds: Int = 24 * 3600
    /// Lifetime of an issued service token when the request gives no `ttl`.
    package var tokenDefaultTTLSeconds: Int = 3600
    /// Longest service-token lifetime a request may ask for.
    package var tokenMaxTTLSeconds: Int = 24 * 3600
    /// Requests one user may cancel (reset, or hang up on, before the response ended) in a burst; past it and
    /// the refill, the user's new requests get 429. 0 turns the budget off.
    package var userCancellationBurst: Int = 200
    /// Cancellations a second that refill a user's budget.
    package var userCancellationsPerSecond: Double = 50
    /// The gateway configuration file (docs/gateway.md, "Configuration"); nil turns the gateway off.
    package var gatewayConfigFile: String?
    /// Audit lines' destination (a file, or `-` for stdout); overrides the gateway configuration's `auditLog`.
    package var auditLog: String?
    /// The debug sessions' journal (docs/gateway.md, "Debug sessions"); nil: `$STATE_DIRECTORY/sessions.journal`
    /// when systemd gives a state directory, else the session API is off.
    package var sessionsJournal: String?

    /// The defaults, which do not validate until the CA files are set.
    package init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case caCertFile, caKeyFile, serverNames, serverCertFile, serverKeyFile
        case agentListen, serviceListen, controlListen, metricsListen, serviceURL, trustDomain, logLevel
        case pingIntervalSeconds, pingTimeoutSeconds, instanceID, replicaCount, replicasFromDNS
        case replicasResolveIntervalSeconds, drainTimeoutSeconds, streamWindowBytes
        case maxHeaderBytes, kubeconfigDefaultTTLSeconds, kubeconfigMaxTTLSeconds, tokenDefaultTTLSeconds
        case tokenMaxTTLSeconds, reloadCheckSeconds, userCancellationBurst, userCancellationsPerSecond
        case requestHeadTimeoutSeconds, idleTimeoutSeconds, maxConcurrentStreamsPerConnection, userConnectionWindowBytes
        case gatewayConfigFile, auditLog, sessionsJournal
    }

    /// Decodes a config file; absent fields keep their defaults, unknown fields are an error.
    package init(from decoder: any Decoder) throws {
        try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func read<Value: Decodable>(_ key: CodingKeys, into value: inout Value) throws {
            if let decoded = try container.decodeIfPresent(Value.self, forKey: key) { value = decoded }
        }
        try read(.caCertFile, into: &self.caCertFile)
        try read(.caKeyFile, into: &self.caKeyFile)
        try read(.serverNames, into: &self.serverNames)
        self.serverCertFile = try container.decodeIfPresent(String.self, forKey: .serverCertFile)
        self.serverKeyFile = try container.decodeIfPresent(String.self, forKey: .serverKeyFile)
        try read(.agentListen, into: &self.agentListen)
        try read(.serviceListen, into: &self.serviceListen)
        try read(.controlListen, into: &self.controlListen)
        try read(.metricsListen, into: &self.metricsListen)
        self.serviceURL = try container.decodeIfPresent(String.self, forKey: .serviceURL)
        try read(.trustDomain, into: &self.trustDomain)
        try read(.logLevel, into: &self.logLevel)
        try read(.pingIntervalSeconds, into: &self.pingIntervalSeconds)
        try read(.pingTimeoutSeconds, into: &self.pingTimeoutSeconds)
        self.instanceID = try container.decodeIfPresent(String.self, forKey: .instanceID)
        self.replicaCount = try container.decodeIfPresent(Int.self, forKey: .replicaCount)
        self.replicasFromDNS = try container.decodeIfPresent(String.self, forKey: .replicasFromDNS)
        try read(.replicasResolveIntervalSeconds, into: &self.replicasResolveIntervalSeconds)
        try read(.drainTimeoutSeconds, into: &self.drainTimeoutSeconds)
        try read(.reloadCheckSeconds, into: &self.reloadCheckSeconds)
        try read(.streamWindowBytes, into: &self.streamWindowBytes)
        try read(.maxHeaderBytes, into: &self.maxHeaderBytes)
        try read(.requestHeadTimeoutSeconds, into: &self.requestHeadTimeoutSeconds)
        try read(.idleTimeoutSeconds, into: &self.idleTimeoutSeconds)
        try read(.maxConcurrentStreamsPerConnection, into: &self.maxConcurrentStreamsPerConnection)
        try read(.userConnectionWindowBytes, into: &self.userConnectionWindowBytes)
        try read(.kubeconfigDefaultTTLSeconds, into: &self.kubeconfigDefaultTTLSeconds)
        try read(.kubeconfigMaxTTLSeconds, into: &self.kubeconfigMaxTTLSeconds)
        try read(.tokenDefaultTTLSeconds, into: &self.tokenDefaultTTLSeconds)
        try read(.tokenMaxTTLSeconds, into: &self.tokenMaxTTLSeconds)
        try read(.userCancellationBurst, into: &self.userCancellationBurst)
        try read(.userCancellationsPerSecond, into: &self.userCancellationsPerSecond)
        self.gatewayConfigFile = try container.decodeIfPresent(String.self, forKey: .gatewayConfigFile)
        self.auditLog = try container.decodeIfPresent(String.self, forKey: .auditLog)
        self.sessionsJournal = try container.decodeIfPresent(String.self, forKey: .sessionsJournal)
    }

    /// The command line this configuration reads.
    package static let parser: CommandLineParser = {
        let defaults = ControllerConfiguration()
        return CommandLineParser(
            command: "porthole-controller",
            summary: """
                Accepts agent tunnels and routes users' requests down them. Flags override the --config file, \
                which overrides the defaults.
                """,
            options: [
                .value("--config", "FILE", help: "JSON configuration file; flags override its values."),
                .value("--ca-cert", "FILE", help: "CA certificate (PEM) that signs every identity. Required."),
                .value("--ca-key", "FILE", help: "CA private key (PEM). Required."),
                .value(
                    "--server-name", "NAME", help: "DNS name or IP for the self-issued server certificate.",
                    default: defaults.serverNames.joined(separator: ","), repeatable: true),
                .value(
                    "--server-cert", "FILE", help: "Server certificate (PEM) to present instead; needs --server-key."),
                .value("--server-key", "FILE", help: "Private key (PEM) for --server-cert."),
                .value(
                    "--agent-listen", "HOST:PORT", help: "Agent tunnel listener.", default: "\(defaults.agentListen)"),
                .value(
                    "--service-listen", "HOST:PORT", help: "User/service listener.",
                    default: "\(defaults.serviceListen)"),
                .value(
                    "--control-listen", "HOST:PORT", help: "Control API listener.", default: "\(defaults.controlListen)"
                ),
                .value(
                    "--metrics-listen", "HOST:PORT", help: "Plain-HTTP /metrics, /healthz, /readyz.",
                    default: "\(defaults.metricsListen)"),
                .value(
                    "--service-url", "URL", help: "https URL users reach the service listener at (for kubeconfigs).",
                    default: "https://FIRST-SERVER-NAME:SERVICE-PORT"),
                .value("--trust-domain", "DOMAIN", help: "SPIFFE trust domain.", default: defaults.trustDomain),
                .value("--log-level", "LEVEL", help: "debug, info, warning or error.", default: defaults.logLevel),
                .value(
                    "--ping-interval", "SECONDS", help: "Seconds between tunnel PINGs.",
                    default: ConfigurationValidation.format(defaults.pingIntervalSeconds)),
                .value(
                    "--ping-timeout", "SECONDS", help: "Seconds without a PING answer before a tunnel is dropped.",
                    default: ConfigurationValidation.format(defaults.pingTimeoutSeconds)),
                .value(
                    "--instance-id", "ID", help: "Name of this replica in logs and metrics.",
                    default: "HOSTNAME-RANDOM"),
                .value(
                    "--replicas", "N", help: "Replicas serving agents, announced so agents behind one name find all.",
                    default: "not announced"),
                .value(
                    "--replicas-from-dns", "NAME", help: "Announce the number of A/AAAA records of NAME as --replicas.",
                    default: "off"),
                .value(
                    "--replicas-resolve-interval", "SECONDS", help: "Seconds between look-ups of --replicas-from-dns.",
                    default: ConfigurationValidation.format(defaults.replicasResolveIntervalSeconds)),
                .value(
                    "--drain-timeout", "SECONDS", help: "Seconds streams may finish after shutdown begins.",
                    default: ConfigurationValidation.format(defaults.drainTimeoutSeconds)),
                .value(
                    "--reload-check", "SECONDS", help: "Seconds between checks of the certificate files for changes.",
                    default: ConfigurationValidation.format(defaults.reloadCheckSeconds)),
                .value(
                    "--request-head-timeout", "SECONDS",
                    help: "Seconds a user connection has for the TLS handshake and each HTTP/1.1 request head.",
                    default: ConfigurationValidation.format(defaults.requestHeadTimeoutSeconds)),
                .value(
                    "--idle-timeout", "SECONDS",
                    help: "Seconds a user connection may idle (no request in progress) before it is closed.",
                    default: ConfigurationValidation.format(defaults.idleTimeoutSeconds)),
                .value(
                    "--max-concurrent-streams", "N", help: "Concurrent HTTP/2 streams allowed per user connection.",
                    default: "\(defaults.maxConcurrentStreamsPerConnection)"),
                .value(
                    "--user-connection-window", "BYTES",
                    help: "HTTP/2 receive window of each user connection: request bytes it can have buffered.",
                    default: "\(defaults.userConnectionWindowBytes)"),
                .value("--gateway-config", "FILE", help: "Gateway configuration (JSON): issuers, gateways, policy.",
                       default: "off"),
                .value("--audit-log", "FILE", help: "Audit lines (JSON) to FILE, or - for stdout; SIGHUP reopens it.",
                       default: "the gateway configuration's auditLog"),
                .value("--sessions-journal", "FILE",
                       help: "Debug sessions' journal (JSON lines; one replica). Needs --gateway-config.",
                       default: "$STATE_DIRECTORY/sessions.journal, else sessions off"),
            ])
    }()

    /// The `--help` text.
    package static var usage: String { Self.parser.usage }

    /// Defaults, overridden by the `--config` file, overridden by flags; then validated.
    ///
    /// Relative paths in the file are resolved against the file's directory; relative paths in flags are left
    /// to the working directory. A repeatable flag (`--server-name`) replaces the file's list.
    ///
    /// - Parameter arguments: the command line without the executable name.
    /// - Throws: `ConfigurationError` (`.helpRequested` for `-h`/`--help`).
    package static func load(arguments: [String]) throws -> ControllerConfiguration {
        let flags = try Self.parser.parse(arguments)
        var configuration = ControllerConfiguration()
        if let path = flags.string("--config") {
            configuration = try ConfigurationFile.read(ControllerConfiguration.self, path: path)
            configuration.resolvePaths(relativeTo: ConfigurationFile.directory(of: path))
        }
        try configuration.apply(flags)
        try configuration.validate()
        return configuration
    }

    private mutating func resolvePaths(relativeTo directory: String) {
        self.caCertFile = ConfigurationFile.resolve(self.caCertFile, relativeTo: directory)
        self.caKeyFile = ConfigurationFile.resolve(self.caKeyFile, relativeTo: directory)
        self.serverCertFile = self.serverCertFile.map { ConfigurationFile.resolve($0, relativeTo: directory) }
        self.serverKeyFile = self.serverKeyFile.map { ConfigurationFile.resolve($0, relativeTo: directory) }
        self.gatewayConfigFile = self.gatewayConfigFile.map { ConfigurationFile.resolve($0, relativeTo: directory) }
        self.auditLog = self.auditLog.map { $0 == "-" ? $0 : ConfigurationFile.resolve($0, relativeTo: directory) }
        self.sessionsJournal = self.sessionsJournal.map { ConfigurationFile.resolve($0, relativeTo: directory) }
    }

    private mutating func apply(_ flags: CommandLineParser.Arguments) throws {
        if let value = flags.string("--ca-cert") { self.caCertFile = value }
        if let value = flags.string("--ca-key") { self.caKeyFile = value }
        if flags.isPresent("--server-name") { self.serverNames = flags.strings("--server-name") }
        if let value = flags.string("--server-cert") { self.serverCertFile = value }
        if let value = flags.string("--server-key") { self.serverKeyFile = value }
        if let value = try flags.listenAddress("--agent-listen") { self.agentListen = value }
        if let value = try flags.listenAddress("--service-listen") { self.serviceListen = value }
        if let value = try flags.listenAddress("--control-listen") { self.controlListen = value }
        if let value = try flags.listenAddress("--metrics-listen") { self.metricsListen = value }
        if let value = flags.string("--service-url") { self.serviceURL = value }
        if let value = flags.string("--trust-domain") { self.trustDomain = value }
        if let value = flags.string("--log-level") { self.logLevel = value }
        if let value = try flags.double("--ping-interval") { self.pingIntervalSeconds = value }
        if let value = try flags.double("--ping-timeout") { self.pingTimeoutSeconds = value }
        if let value = flags.string("--instance-id") { self.instanceID = value }
        if let value = try flags.int("--replicas") { self.replicaCount = value }
        if let value = flags.string("--replicas-from-dns") { self.replicasFromDNS = value }
        if let value = try flags.double("--replicas-resolve-interval") { self.replicasResolveIntervalSeconds = value }
        if let value = try flags.double("--drain-timeout") { self.drainTimeoutSeconds = value }
        if let value = try flags.double("--reload-check") { self.reloadCheckSeconds = value }
        if let value = try flags.double("--request-head-timeout") { self.requestHeadTimeoutSeconds = value }
        if let value = try flags.double("--idle-timeout") { self.idleTimeoutSeconds = value }
        if let value = try flags.int("--max-concurrent-streams") { self.maxConcurrentStreamsPerConnection = value }
        if let value = try flags.int("--user-connection-window") { self.userConnectionWindowBytes = value }
        if let value = flags.string("--gateway-config") { self.gatewayConfigFile = value }
        if let value = flags.string("--audit-log") { self.auditLog = value }
        if let value = flags.string("--sessions-journal") { self.sessionsJournal = value }
    }

    /// Checks every field; the error names the first field at fault and how to set it.
    package func validate() throws {
        func fail(_ field: String, _ reason: String) -> ConfigurationError { .invalid(field: field, reason: reason) }
        guard !self.caCertFile.isEmpty else { throw fail("caCertFile", "required (--ca-cert FILE)") }
        guard !self.caKeyFile.isEmpty else { throw fail("caKeyFile", "required (--ca-key FILE)") }
        switch (self.serverCertFile, self.serverKeyFile) {
        case (nil, nil):
            guard !self.serverNames.isEmpty else {
                throw fail("serverNames", "at least one name is needed to issue the server certificate (--server-name)")
            }
        case (.some(let certificate), .some(let key)):
            guard !certificate.isEmpty else { throw fail("serverCertFile", "must not be empty") }
            guard !key.isEmpty else { throw fail("serverKeyFile", "must not be empty") }
        case (.some, nil):
            throw fail("serverKeyFile", "required with serverCertFile (--server-key FILE)")
        case (nil, .some):
            throw fail("serverCertFile", "required with serverKeyFile (--server-cert FILE)")
        }
        for (index, name) in self.serverNames.enumerated() where !ConfigurationValidation.isHostName(name) {
            throw fail("serverNames[\(index)]", "\"\(name)\" is not a DNS name or IP address")
        }
        try ConfigurationValidation.checkDistinctListeners([
            ("agentListen", self.agentListen), ("serviceListen", self.serviceListen),
            ("controlListen", self.controlListen), ("metricsListen", self.metricsListen),
        ])
        if let url = self.serviceURL {
            try ConfigurationValidation.checkURL(url, field: "serviceURL", schemes: ["https"])
        }
        guard ConfigurationValidation.isTrustDomain(self.trustDomain) else {
            throw fail("trustDomain", "\"\(self.trustDomain)\" is not a lowercase DNS-style name like porthole.local")
        }
        try ConfigurationValidation.checkLogLevel(self.logLevel)
        try ConfigurationValidation.checkPing(interval: self.pingIntervalSeconds, timeout: self.pingTimeoutSeconds)
        if let instanceID = self.instanceID, !ConfigurationValidation.isName(instanceID) {
            throw fail("instanceID", "\"\(instanceID)\" must be non-empty letters, digits, '.', '_' or '-'")
        }
        if let count = self.replicaCount, !(1...TunnelProtocol.maxReplicaCount).contains(count) {
            throw fail("replicaCount", "must be between 1 and \(TunnelProtocol.maxReplicaCount), got \(count)")
        }
        if let name = self.replicasFromDNS {
            guard self.replicaCount == nil else {
                throw fail("replicasFromDNS", "give either replicaCount (--replicas) or replicasFromDNS, not both")
            }
            guard ConfigurationValidation.isHostName(name) else {
                throw fail("replicasFromDNS", "\"\(name)\" is not a DNS name")
            }
        }
        try ConfigurationValidation.checkPositive(self.replicasResolveIntervalSeconds,
                                                  field: "replicasResolveIntervalSeconds")
        try ConfigurationValidation.checkPositive(self.reloadCheckSeconds, field: "reloadCheckSeconds")
        guard self.drainTimeoutSeconds.isFinite, self.drainTimeoutSeconds >= 0 else {
            throw fail("drainTimeoutSeconds", "must be 0 or more, got \(ConfigurationValidation.format(self.drainTimeoutSeconds))")
        }
        try ConfigurationValidation.checkStreamWindow(self.streamWindowBytes)
        guard (1024...(16 << 20)).contains(self.maxHeaderBytes) else {
            throw fail("maxHeaderBytes", "must be between 1024 and 16777216, got \(self.maxHeaderBytes)")
        }
        try ConfigurationValidation.checkTimeout(self.requestHeadTimeoutSeconds, field: "requestHeadTimeoutSeconds")
        try ConfigurationValidation.checkTimeout(self.idleTimeoutSeconds, field: "idleTimeoutSeconds")
        guard (1...10_000).contains(self.maxConcurrentStreamsPerConnection) else {
            throw fail("maxConcurrentStreamsPerConnection",
                       "must be between 1 and 10000, got \(self.maxConcurrentStreamsPerConnection)")
        }
        guard (65_535...Int(Int32.max)).contains(self.userConnectionWindowBytes) else {
            throw fail("userConnectionWindowBytes",
                       "must be between 65535 and 2147483647, got \(self.userConnectionWindowBytes)")
        }
        try ConfigurationValidation.checkTTL(
            default: self.kubeconfigDefaultTTLSeconds, max: self.kubeconfigMaxTTLSeconds, prefix: "kubeconfig")
        try ConfigurationValidation.checkTTL(
            default: self.tokenDefaultTTLSeconds, max: self.tokenMaxTTLSeconds, prefix: "token")
        guard self.userCancellationBurst >= 0 else {
            throw fail("userCancellationBurst", "must be 0 (off) or more, got \(self.userCancellationBurst)")
        }
        guard self.userCancellationsPerSecond.isFinite, self.userCancellationsPerSecond > 0 else {
            throw fail("userCancellationsPerSecond",
                       "must be more than 0, got \(ConfigurationValidation.format(self.userCancellationsPerSecond))")
        }
    }

    /// The parsed log level; valid after `validate()`.
    package var level: LogLevel { LogLevel(name: self.logLevel) ?? .info }

    /// `serviceURL` if set, otherwise `https://` + the first server name + the port the service listener bound.
    package func serviceURL(boundPort: UInt16) -> String {
        if let url = self.serviceURL { return url }
        let host = self.serverNames.first ?? "localhost"
        return host.contains(":") ? "https://[\(host)]:\(boundPort)" : "https://\(host):\(boundPort)"
    }

    /// `instanceID` if set, otherwise the host name plus a random suffix; call once at start-up.
    package func makeInstanceID() -> String {
        if let instanceID = self.instanceID { return instanceID }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "controller"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(host.isEmpty ? "controller" : host)-\(String(repeating: "0", count: 8 - suffix.count))\(suffix)"
    }
}
