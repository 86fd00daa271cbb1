import Foundation
import Tunnel

/// What `make-ca` was asked to do, from its command line.
struct MakeCAOptions {
    var outputDirectory = ""
    var trustDomain: String?
    var controlName: String?
    var agentNames: [String] = []
    /// API gateways to issue `gateway/NAME` client credentials for (trusted by the controller's gateway config).
    var gatewayNames: [String] = []
    var namespace: String?
    var validityDays = 365
    var reissueAgents = false
    var replaceCA = false

    static let defaultTrustDomain = "porthole.local"
    static let defaultControlName = "admin"

    static let parser = CommandLineParser(
        command: "make-ca",
        summary: """
            Creates a Porthole certificate authority and credentials signed by it, or adds agent credentials to \
            the CA already in --out. A new CA writes DIR/ca.crt and ca.key (valid 10 years), control.crt and \
            control.key (spiffe://DOMAIN/control/NAME, for the control API), for each --agent agent-NAME.crt, \
            agent-NAME.key (spiffe://DOMAIN/agent/NAME) and agent-NAME.yaml (that agent's Secret alone, to hand \
            to whoever installs it), and secrets.yaml (all of them as kubernetes.io/tls Secrets porthole-ca, \
            porthole-control, porthole-agent-NAME). With a CA already in DIR, --agent issues from it and never \
            touches ca.crt or ca.key; an agent that already has a credential is refused unless --reissue-agents. \
            Keys and Secret files are written with mode 0600.
            """,
        options: [
            .value("--out", "DIR", help: "directory to write into (created if missing); required"),
            .value("--agent", "NAME", help: "issue a credential for agent NAME", repeatable: true),
            .value("--gateway", "NAME",
                   help: "issue gateway-NAME.crt/.key (spiffe://DOMAIN/gateway/NAME), the client certificate an API "
                       + "gateway presents to the service listener", repeatable: true),
            .value("--trust-domain", "DOMAIN",
                   help: "SPIFFE trust domain of a new CA; with an existing CA it must match the CA's",
                   default: defaultTrustDomain),
            .value("--control", "NAME", help: "name of the control credential of a new CA",
                   default: defaultControlName),
            .value("--namespace", "NS", help: "namespace of the Secrets in the YAML files", default: "none"),
            .value("--validity-days", "N", help: "lifetime of control and agent certificates, 1 to 36500 days",
                   default: "365"),
            .flag("--reissue-agents",
                  help: "replace the credential of an --agent that already has one (the old one stays valid "
                      + "until it expires)"),
            .flag("--replace-ca",
                  help: "replace the CA in DIR with a new one: every credential issued by the old CA stops "
                      + "working (make-ca lists what it invalidates)"),
        ])

    static var usage: String { Self.parser.usage }

    init(arguments: [String]) throws {
        if arguments.contains("--force") {
            throw ConfigurationError.usage(
                "--force is gone: make-ca adds agents to an existing CA by itself; --reissue-agents replaces an "
                    + "agent's credential, --replace-ca replaces the whole CA")
        }
        let flags = try Self.parser.parse(arguments)
        guard let outputDirectory = flags.string("--out"), !outputDirectory.isEmpty else {
            throw ConfigurationError.usage("--out is required")
        }
        self.outputDirectory = outputDirectory
        self.trustDomain = flags.string("--trust-domain")
        self.controlName = flags.string("--control")
        self.agentNames = flags.strings("--agent")
        self.gatewayNames = flags.strings("--gateway")
        self.namespace = flags.string("--namespace")
        self.reissueAgents = flags.isPresent("--reissue-agents")
        self.replaceCA = flags.isPresent("--replace-ca")
        if let days = try flags.int("--validity-days") {
            guard days > 0, days <= 100 * 365 else {
                throw ConfigurationError.usage("--validity-days must be from 1 to 36500 days, not \(days)")
            }
            self.validityDays = days
        }
        if let trustDomain, trustDomain.isEmpty || trustDomain.contains("/")
            || !EndpointIdentity.isValidComponent(trustDomain)
        {
            throw ConfigurationError.usage("--trust-domain: invalid trust domain \(trustDomain)")
        }
        var names = self.agentNames.map { ("--agent", $0) } + self.gatewayNames.map { ("--gateway", $0) }
        if let controlName = self.controlName { names.insert(("--control", controlName), at: 0) }
        for (flag, name) in names where !EndpointIdentity.isValidComponent(name) {
            throw ConfigurationError.usage("\(flag): invalid name \(name): use letters, digits, '.', '_' and '-'")
        }
        guard Set(self.agentNames).count == self.agentNames.count else {
            throw ConfigurationError.usage("--agent: an agent name is given twice")
        }
    }
}
