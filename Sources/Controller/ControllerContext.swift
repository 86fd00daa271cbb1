import Foundation
import Tunnel

/// What every controller connection shares: configuration, CA, TLS contexts, registry and metrics.
final class ControllerContext: Sendable {
    let configuration: ControllerConfiguration
    let authority: CertificateAuthority
    let instanceID: String
    let serviceURL: String
    let registry = AgentRegistry()
    let metrics: ControllerMetrics
    let authenticator: Authenticator
    let agentTLS: TLSContext
    let serviceTLS: TLSContext
    let controlTLS: TLSContext

    init(configuration: ControllerConfiguration, metrics: ControllerMetrics, serviceURL: String) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.serviceURL = serviceURL
        self.authority = try CertificateAuthority(
            certificatePEM: String(contentsOfFile: configuration.caCertFile, encoding: .utf8),
            keyPEM: String(contentsOfFile: configuration.caKeyFile, encoding: .utf8))
        self.instanceID = configuration.instanceID
            ?? "\(ProcessInfo.processInfo.hostName)-\(RandomID.make(bytes: 3))"

        let chain: [Certificate]
        let key: PrivateKey
        if let certFile = configuration.serverCertFile, let keyFile = configuration.serverKeyFile {
            chain = try Certificate.chain(pem: String(contentsOfFile: certFile, encoding: .utf8))
            key = try PrivateKey(pem: String(contentsOfFile: keyFile, encoding: .utf8))
        } else {
            let names = configuration.serverNames
            let ips = names.filter { Self.isIPAddress($0) }
            let issued = try self.authority.issueWithNewKey(CertificateSpec(
                commonName: names.first ?? "porthole-controller", dnsNames: names.filter { !Self.isIPAddress($0) },
                ipAddresses: ips, validity: 90 * 86_400, usage: .server))
            chain = [issued.certificate]
            key = issued.key
        }
        let trusted = [self.authority.certificate]
        self.agentTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                              clientAuthentication: .required, alpn: [TunnelProtocol.alpn])
        self.serviceTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                                clientAuthentication: .optional, alpn: ["h2", "http/1.1"])
        self.controlTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                                clientAuthentication: .required, alpn: ["http/1.1"])
        self.authenticator = Authenticator(trustDomain: configuration.trustDomain,
                                           tokenVerifier: self.authority.certificate)
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
