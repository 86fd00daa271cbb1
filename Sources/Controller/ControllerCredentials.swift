import Foundation
import Tunnel

/// The CA, the server certificate and the TLS contexts built from them: one consistent set, replaced whole when
/// the files change, so new connections use the new set and open ones keep theirs.
struct ControllerCredentials: Sendable {
    let authority: CertificateAuthority
    let agentTLS: TLSContext
    let serviceTLS: TLSContext
    let controlTLS: TLSContext
    let authenticator: Authenticator
    let serverCertificateNotAfter: Date
    /// Whether the controller issued its server certificate itself (no `--server-cert`), so it renews it too.
    let isServerCertificateSelfIssued: Bool
    /// Lifetime of a self-issued server certificate; it is renewed when a third of it is left.
    static let selfIssuedValidity: TimeInterval = 90 * 86_400

    init(configuration: ControllerConfiguration) throws {
        let authority = try CertificateAuthority(
            certificatePEM: PEMFile.read(configuration.caCertFile, role: "CA certificate", expecting: "CERTIFICATE"),
            keyPEM: PEMFile.read(configuration.caKeyFile, role: "CA key", expecting: "PRIVATE KEY"))
        let chain: [Certificate]
        let key: PrivateKey
        if let certFile = configuration.serverCertFile, let keyFile = configuration.serverKeyFile {
            chain = try PEMFile.certificates(certFile, role: "server certificate")
            key = try PEMFile.privateKey(keyFile, role: "server key")
        } else {
            let names = configuration.serverNames
            let issued = try authority.issueWithNewKey(CertificateSpec(
                commonName: names.first ?? "porthole-controller", dnsNames: names.filter { !Resolver.isIPAddress($0) },
                ipAddresses: names.filter { Resolver.isIPAddress($0) }, validity: Self.selfIssuedValidity, usage: .server))
            chain = [issued.certificate]
            key = issued.key
        }
        let trusted = [authority.certificate]
        self.authority = authority
        self.agentTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                              clientAuthentication: .required, alpn: [TunnelProtocol.alpn])
        self.serviceTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                                clientAuthentication: .optional, alpn: ["h2", "http/1.1"])
        self.controlTLS = try TLSContext.server(certificateChain: chain, key: key, trustedCAs: trusted,
                                                clientAuthentication: .required, alpn: ["http/1.1"])
        self.authenticator = Authenticator(trustDomain: configuration.trustDomain,
                                           tokenVerifier: authority.certificate)
        self.serverCertificateNotAfter = chain.first?.notAfter ?? Date()
        self.isServerCertificateSelfIssued = configuration.serverCertFile == nil
    }

    /// A self-issued server certificate with less than a third of its lifetime left.
    var needsRenewal: Bool {
        self.isServerCertificateSelfIssued
            && self.serverCertificateNotAfter.timeIntervalSinceNow < Self.selfIssuedValidity / 3
    }

    /// The files this set was read from.
    static func files(of configuration: ControllerConfiguration) -> [String] {
        [configuration.caCertFile, configuration.caKeyFile, configuration.serverCertFile, configuration.serverKeyFile]
            .compactMap { $0 }
    }
}
