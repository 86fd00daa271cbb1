import Foundation
import Tunnel

/// Issues the client certificate behind a kubeconfig and renders the kubeconfig around it.
struct KubeconfigBuilder: Sendable {
    let authority: CertificateAuthority
    let trustDomain: String
    /// The service listener's URL, the kubeconfig's `server`.
    let serviceURL: String

    /// How far back a certificate's validity starts, for clock skew; it still ends exactly TTL from now.
    static let clockSkewAllowance: TimeInterval = 5 * 60

    /// A kubeconfig for `request`: a fresh key and a client certificate with CN = user and the URI SAN
    /// `spiffe://TRUST/kubernetes/AGENT/SERVICE`, valid until the requested TTL from now.
    func build(
        _ request: KubeconfigRequest, now: Date = Date()
    ) throws -> (kubeconfig: Kubeconfig, certificate: Certificate) {
        let identity = EndpointIdentity.kubernetes(agent: request.agent, service: request.service)
        let issued = try self.authority.issueWithNewKey(CertificateSpec(
            commonName: request.user, uris: [identity.uri(trustDomain: self.trustDomain)],
            validity: TimeInterval(request.ttlSeconds) + Self.clockSkewAllowance,
            notBefore: now.addingTimeInterval(-Self.clockSkewAllowance), usage: .client))
        let kubeconfig = Kubeconfig(
            name: Kubeconfig.entryName(agent: request.agent, service: request.service), server: self.serviceURL,
            certificateAuthorityPEM: self.authority.certificate.pem, clientCertificatePEM: issued.certificate.pem,
            clientKeyPEM: issued.key.pem)
        return (kubeconfig, issued.certificate)
    }
}
