import Foundation
import Testing

@testable import Tunnel

@Suite struct TLSConnectionTests {
    /// One CA with a server and a client credential, issued once for the suite's tests.
    struct Fixture {
        let authority: CertificateAuthority
        let server: (certificate: Certificate, key: PrivateKey)
        let client: (certificate: Certificate, key: PrivateKey)

        init() throws {
            self.authority = try CertificateAuthority.create(commonName: "Test CA", validity: 3600)
            self.server = try self.authority.issueWithNewKey(
                CertificateSpec(
                    commonName: "controller", dnsNames: ["controller.test"], ipAddresses: ["127.0.0.1", "::1"],
                    validity: 3600, usage: .server))
            self.client = try self.authority.issueWithNewKey(
                CertificateSpec(
                    commonName: "edge-1", uris: ["spiffe://porthole.local/agent/edge-1"], validity: 3600,
                    usage: .client))
        }

        func serverContext(
            clientAuthentication: TLSContext.ClientAuthentication = .required, alpn: [String] = ["h2", "http/1.1"]
        ) throws -> TLSContext {
            try TLSContext.server(
                certificateChain: [self.server.certificate], key: self.server.key,
                trustedCAs: [self.authority.certificate], clientAuthentication: clientAuthentication, alpn: alpn)
        }

        func clientContext(
            identity: (certificate: Certificate, key: PrivateKey)?, trustedCAs: [Certificate]? = nil,
            verifyPeer: Bool = true, alpn: [String] = ["http/1.1", "h2"]
        ) throws -> TLSContext {
            try TLSContext.client(
                certificateChain: identity.map { [$0.certificate] }, key: identity?.key,
                trustedCAs: trustedCAs ?? [self.authority.certificate], verifyPeer: verifyPeer, alpn: alpn)
        }
    }

    /// Which side of a handshake failed, and how.
    enum Failure: Error {
        case client(OpenSSLError)
        case server(OpenSSLError)

        var description: String {
            switch self {
            case .client(let error): "client: \(error)"
            case .server(let error): "server: \(error)"
            }
        }
    }

    /// Pumps ciphertext between the two ends until both handshakes complete (and settle) or one throws.
    static func handshake(client: TLSConnection, server: TLSConnection) throws(Failure) {
        var clientState = TLSConnection.HandshakeState.inProgress
        var serverState = TLSConnection.HandshakeState.inProgress
        for _ in 0..<20 {
            do { clientState = try client.handshake() } catch { throw .client(error as! OpenSSLError) }
            Self.transfer(from: client, to: server)
            do { serverState = try server.handshake() } catch { throw .server(error as! OpenSSLError) }
            Self.transfer(from: server, to: client)
            if clientState == .complete, serverState == .complete { return }
        }
        Issue.record("handshake did not finish")
    }

    static func transfer(from sender: TLSConnection, to receiver: TLSConnection) {
        let bytes = sender.pendingCiphertext()
        bytes.withUnsafeBytes { receiver.receiveCiphertext($0) }
    }

    static func send(_ text: String, from sender: TLSConnection, to receiver: TLSConnection) throws -> String {
        let bytes = Array(text.utf8)
        let accepted = try bytes.withUnsafeBytes { try sender.write($0) }
        #expect(accepted == bytes.count)
        Self.transfer(from: sender, to: receiver)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var received: [UInt8] = []
        while true {
            let result = try buffer.withUnsafeMutableBytes { try receiver.read(into: $0) }
            guard case .bytes(let count) = result else { break }
            received += buffer.prefix(count)
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test func mutualHandshakeCarriesDataBothWaysAndNegotiatesH2() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client), serverName: "controller.test")
        try Self.handshake(client: client, server: server)

        #expect(client.negotiatedALPN == "h2")
        #expect(server.negotiatedALPN == "h2")
        #expect(server.peerCertificate?.uriSANs == ["spiffe://porthole.local/agent/edge-1"])
        #expect(client.peerCertificate?.commonName == "controller")
        #expect(try Self.send("hello from the client", from: client, to: server) == "hello from the client")
        #expect(try Self.send("hello from the server", from: server, to: client) == "hello from the server")

        let large = String(repeating: "0123456789", count: 10_000)
        #expect(try Self.send(large, from: client, to: server) == large)

        client.shutdown()
        Self.transfer(from: client, to: server)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == .closed)
    }

    @Test func readWithoutCiphertextWantsMore() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client), serverName: "controller.test")
        try Self.handshake(client: client, server: server)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(try buffer.withUnsafeMutableBytes { try client.read(into: $0) } == .wantMore)
        #expect(client.pendingCiphertext().isEmpty)
    }

    @Test func serverWithoutClientAuthenticationAcceptsAnonymousClient() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(clientAuthentication: .none), serverName: nil)
        let client = try TLSConnection(context: fixture.clientContext(identity: nil), serverName: "controller.test")
        try Self.handshake(client: client, server: server)
        #expect(server.peerCertificate == nil)
        #expect(try Self.send("ping", from: client, to: server) == "ping")
    }

    @Test func optionalClientAuthenticationAcceptsBothKindsOfClient() throws {
        let fixture = try Fixture()
        let anonymousServer = try TLSConnection(
            context: fixture.serverContext(clientAuthentication: .optional), serverName: nil)
        let anonymous = try TLSConnection(context: fixture.clientContext(identity: nil), serverName: "controller.test")
        try Self.handshake(client: anonymous, server: anonymousServer)
        #expect(anonymousServer.peerCertificate == nil)

        let server = try TLSConnection(context: fixture.serverContext(clientAuthentication: .optional), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client), serverName: "controller.test")
        try Self.handshake(client: client, server: server)
        #expect(server.peerCertificate?.commonName == "edge-1")
    }

    @Test func requiredClientCertificateMissingFailsServerHandshake() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(context: fixture.clientContext(identity: nil), serverName: "controller.test")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("handshake succeeded without a client certificate")
        } catch {
            guard case .server(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.call == "SSL_do_handshake")
            #expect(error.description.contains("certificate"))
        }
    }

    @Test func clientCertificateFromAnotherCAFailsServerHandshake() throws {
        let fixture = try Fixture()
        let stranger = try CertificateAuthority.create(commonName: "Other CA", validity: 3600)
        let identity = try stranger.issueWithNewKey(
            CertificateSpec(
                commonName: "intruder", uris: ["spiffe://porthole.local/agent/edge-1"], validity: 3600,
                usage: .client))
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: identity), serverName: "controller.test")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("handshake succeeded with a foreign client certificate")
        } catch {
            guard case .server(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.messages.first == "unable to get local issuer certificate")
        }
    }

    @Test func serverCertificateFromAnotherCAFailsClientHandshake() throws {
        let fixture = try Fixture()
        let stranger = try CertificateAuthority.create(commonName: "Other CA", validity: 3600)
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client, trustedCAs: [stranger.certificate]),
            serverName: "controller.test")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("client accepted a server certificate from an untrusted CA")
        } catch {
            guard case .client(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.description.contains("unable to get local issuer certificate"))
        }
    }

    @Test func expiredClientCertificateFailsWithExpiredReason() throws {
        let fixture = try Fixture()
        let expired = try fixture.authority.issueWithNewKey(
            CertificateSpec(
                commonName: "edge-1", uris: ["spiffe://porthole.local/agent/edge-1"], validity: 3600,
                notBefore: Date().addingTimeInterval(-7200), usage: .client))
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(context: fixture.clientContext(identity: expired), serverName: "controller.test")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("handshake succeeded with an expired client certificate")
        } catch {
            guard case .server(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.messages.first == "certificate has expired")
            #expect(error.description.contains("expired"))
        }
    }

    @Test func hostnameMismatchFailsClientHandshake() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client), serverName: "elsewhere.test")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("client accepted a certificate for another host")
        } catch {
            guard case .client(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.messages.first == "hostname mismatch")
        }
    }

    @Test func ipAddressMismatchFailsClientHandshake() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(context: fixture.clientContext(identity: fixture.client), serverName: "10.1.2.3")
        do {
            try Self.handshake(client: client, server: server)
            Issue.record("client accepted a certificate for another IP address")
        } catch {
            guard case .client(let error) = error else {
                Issue.record("unexpected \(error.description)")
                return
            }
            #expect(error.messages.first == "IP address mismatch")
        }
    }

    @Test(arguments: ["127.0.0.1", "::1"])
    func ipAddressSANIsAccepted(serverName: String) throws {
        let fixture = try Fixture()
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(context: fixture.clientContext(identity: fixture.client), serverName: serverName)
        try Self.handshake(client: client, server: server)
        #expect(client.peerCertificate?.ipSANs == ["127.0.0.1", "::1"])
    }

    @Test func unverifiedClientAcceptsAnyServerButReportsNoPeerCertificate() throws {
        let fixture = try Fixture()
        let stranger = try CertificateAuthority.create(commonName: "Other CA", validity: 3600)
        let server = try TLSConnection(context: fixture.serverContext(), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(
                identity: fixture.client, trustedCAs: [stranger.certificate], verifyPeer: false),
            serverName: "elsewhere.test")
        try Self.handshake(client: client, server: server)
        #expect(client.peerCertificate == nil)
        #expect(try Self.send("ok", from: client, to: server) == "ok")
    }

    @Test func serverPrefersItsOwnALPNOrderAndFallsBackToNone() throws {
        let fixture = try Fixture()
        let server = try TLSConnection(
            context: fixture.serverContext(alpn: ["http/1.1", "h2"]), serverName: nil)
        let client = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client, alpn: ["h2", "http/1.1"]),
            serverName: "controller.test")
        try Self.handshake(client: client, server: server)
        #expect(client.negotiatedALPN == "http/1.1")

        let otherServer = try TLSConnection(context: fixture.serverContext(alpn: ["h2"]), serverName: nil)
        let otherClient = try TLSConnection(
            context: fixture.clientContext(identity: fixture.client, alpn: ["spdy/3"]), serverName: "controller.test")
        try Self.handshake(client: otherClient, server: otherServer)
        #expect(otherClient.negotiatedALPN == nil)
        #expect(otherServer.negotiatedALPN == nil)
    }
}
