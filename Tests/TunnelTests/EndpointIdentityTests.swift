import Testing

@testable import Tunnel

@Suite struct EndpointIdentityTests {
    static let identities: [EndpointIdentity] = [
        .agent(name: "edge-1"),
        .control(name: "admin"),
        .kubernetes(agent: "edge-1", service: "default"),
        .service(type: "jenkins", agent: "edge_1", service: "ci.main"),
        .gateway(name: "corp-gw"),
    ]

    @Test(arguments: identities)
    func roundTripsThroughURI(identity: EndpointIdentity) {
        let uri = identity.uri(trustDomain: "porthole.local")
        #expect(uri.hasPrefix("spiffe://porthole.local/\(identity.kind)/"))
        #expect(EndpointIdentity(uri: uri, trustDomain: "porthole.local") == identity)
        #expect(EndpointIdentity(uri: uri, trustDomain: "other.example") == nil)
    }

    @Test func formatsEachKind() {
        #expect(EndpointIdentity.agent(name: "a").uri(trustDomain: "t") == "spiffe://t/agent/a")
        #expect(
            EndpointIdentity.kubernetes(agent: "a", service: "s").uri(trustDomain: "t") == "spiffe://t/kubernetes/a/s")
        #expect(
            EndpointIdentity.service(type: "argocd", agent: "a", service: "s").uri(trustDomain: "t")
                == "spiffe://t/service/argocd/a/s")
        #expect(EndpointIdentity.gateway(name: "g").description == "gateway/g")
        #expect(Self.identities.map(\.kind) == ["agent", "control", "kubernetes", "service", "gateway"])
    }

    @Test(arguments: [
        "spiffe://porthole.local/agent",
        "spiffe://porthole.local/agent/",
        "spiffe://porthole.local/agent/a/b",
        "spiffe://porthole.local/agent/a b",
        "spiffe://porthole.local/agent/a%2Fb",
        "spiffe://porthole.local/kubernetes/a",
        "spiffe://porthole.local/service/jenkins/a",
        "spiffe://porthole.local/unknown/a",
        "spiffe://porthole.local//agent/a",
        "spiffe://porthole.localx/agent/a",
        "spiffe://other/agent/a",
        "https://porthole.local/agent/a",
        "spiffe://porthole.local/agent/a/",
        "",
    ])
    func rejectsMalformedOrForeignURIs(uri: String) {
        #expect(EndpointIdentity(uri: uri, trustDomain: "porthole.local") == nil)
    }

    @Test func readsIdentityFromCertificate() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
        let agent = try authority.issueCredential(
            for: .agent(name: "edge-1"), trustDomain: "porthole.local", commonName: "edge-1", validity: 60)
        #expect(
            EndpointIdentity.from(certificate: agent.certificate, trustDomain: "porthole.local")
                == .agent(name: "edge-1"))
        #expect(EndpointIdentity.from(certificate: agent.certificate, trustDomain: "elsewhere") == nil)

        let ambiguous = try authority.issueWithNewKey(
            CertificateSpec(
                commonName: "two", uris: ["spiffe://porthole.local/agent/a", "spiffe://porthole.local/agent/b"],
                validity: 60, usage: .client))
        #expect(EndpointIdentity.from(certificate: ambiguous.certificate, trustDomain: "porthole.local") == nil)

        let mixed = try authority.issueWithNewKey(
            CertificateSpec(
                commonName: "mixed", uris: ["https://example.com/x", "spiffe://porthole.local/gateway/gw"],
                dnsNames: ["gw.test"], validity: 60, usage: .client))
        #expect(
            EndpointIdentity.from(certificate: mixed.certificate, trustDomain: "porthole.local") == .gateway(name: "gw")
        )

        let none = try authority.issueWithNewKey(
            CertificateSpec(commonName: "dns", dnsNames: ["x.test"], validity: 60, usage: .server))
        #expect(EndpointIdentity.from(certificate: none.certificate, trustDomain: "porthole.local") == nil)
    }
}
