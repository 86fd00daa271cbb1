import Dispatch
import Foundation
import Tunnel

/// The agent process: its identity, its services and one `AgentTunnel` per controller.
final class Agent: Sendable {
    let context: AgentContext
    let tunnels: [AgentTunnel]

    init(configuration: AgentConfiguration) throws {
        let chain = try Certificate.chain(pem: String(contentsOfFile: configuration.certFile, encoding: .utf8))
        let key = try PrivateKey(pem: String(contentsOfFile: configuration.keyFile, encoding: .utf8))
        let trusted = try Certificate.chain(pem: String(contentsOfFile: configuration.caCertFile, encoding: .utf8))
        guard let leaf = chain.first else { throw AgentError.configuration("\(configuration.certFile) holds no certificate") }
        let name = try Self.agentName(of: leaf)
        let tls = try TLSContext.client(certificateChain: chain, key: key, trustedCAs: trusted, verifyPeer: true,
                                        alpn: [TunnelProtocol.alpn])
        let file = try ServicesFile.load(path: configuration.servicesFile)
        let services = try file.services.map { try BackendService(definition: $0) }
        let context = AgentContext(name: name, tls: tls, services: services, annotations: configuration.annotations,
                                   configuration: configuration)
        self.context = context
        self.tunnels = configuration.controllers.map { AgentTunnel(controller: $0, context: context) }
    }

    /// The agent's name from its certificate's `spiffe://TRUST/agent/NAME` URI SAN.
    static func agentName(of certificate: Certificate) throws -> String {
        for uri in certificate.uriSANs {
            guard let trust = URL(string: uri)?.host, case .agent(let name)? = EndpointIdentity(uri: uri, trustDomain: trust)
            else { continue }
            return name
        }
        throw AgentError.configuration("the certificate names no agent (expected a URI SAN spiffe://TRUST/agent/NAME)")
    }

    func start() throws {
        Log.info("agent starting", ["agent": self.context.name, "version": portholeVersion,
                                    "services": self.context.services.keys.sorted().joined(separator: ","),
                                    "controllers": self.tunnels.map { "\($0.controller)" }.joined(separator: ",")])
        for tunnel in self.tunnels { tunnel.start() }
    }

    /// Returns after SIGTERM or SIGINT, once the tunnels were told to drain.
    func waitForTermination() async {
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT])
        let received = await signals.next()
        Log.info("agent stopping", ["signal": "\(received)"])
        for tunnel in self.tunnels { tunnel.drain() }
        try? await Task.sleep(nanoseconds: 200_000_000)
    }
}
