import Foundation
import Synchronization
import Tunnel

/// The agent's certificate, key and CA as a TLS client context, reloaded when their files change.
final class AgentIdentity: Sendable {
    let name: String
    private let certFile: String
    private let keyFile: String
    private let caFile: String
    private let state: Mutex<(tls: TLSContext, fingerprint: String)>

    init(certFile: String, keyFile: String, caFile: String) throws {
        self.certFile = certFile
        self.keyFile = keyFile
        self.caFile = caFile
        let loaded = try Self.load(certFile: certFile, keyFile: keyFile, caFile: caFile)
        self.name = loaded.name
        self.state = Mutex((loaded.tls, FileFingerprint.of([certFile, keyFile, caFile])))
    }

    /// The context new tunnels dial with.
    var tls: TLSContext { self.state.withLock { $0.tls } }

    /// Reloads when any file changed since the last load; true when the identity was replaced.
    func reloadIfChanged() -> Bool {
        let fingerprint = FileFingerprint.of([self.certFile, self.keyFile, self.caFile])
        guard fingerprint != self.state.withLock({ $0.fingerprint }) else { return false }
        do {
            let loaded = try Self.load(certFile: self.certFile, keyFile: self.keyFile, caFile: self.caFile)
            guard loaded.name == self.name else {
                Log.error("new certificate names another agent; keeping the old one",
                          ["agent": self.name, "newName": loaded.name])
                self.state.withLock { $0.fingerprint = fingerprint }
                return false
            }
            self.state.withLock { $0 = (loaded.tls, fingerprint) }
            Log.info("agent certificate reloaded", ["agent": self.name, "notAfter": "\(loaded.notAfter)"])
            return true
        } catch {
            // A rotation in progress may show a new certificate beside the old key: try again next time.
            Log.warning("reloading the agent certificate failed; keeping the old one", ["error": "\(error)"])
            return false
        }
    }

    private static func load(certFile: String, keyFile: String, caFile: String) throws
        -> (name: String, tls: TLSContext, notAfter: Date)
    {
        let chain = try PEMFile.certificates(certFile, role: "agent certificate")
        let key = try PEMFile.privateKey(keyFile, role: "agent key")
        let trusted = try PEMFile.certificates(caFile, role: "CA certificate")
        guard let leaf = chain.first else { throw AgentError.configuration("\(certFile) holds no certificate") }
        let name = try Self.agentName(of: leaf)
        let tls = try TLSContext.client(certificateChain: chain, key: key, trustedCAs: trusted, verifyPeer: true,
                                        alpn: [TunnelProtocol.alpn])
        return (name, tls, leaf.notAfter)
    }

    /// The agent's name from its certificate's `spiffe://TRUST/agent/NAME` URI SAN.
    static func agentName(of certificate: Certificate) throws -> String {
        for uri in certificate.uriSANs {
            guard let trust = URL(string: uri)?.host,
                  case .agent(let name)? = EndpointIdentity(uri: uri, trustDomain: trust)
            else { continue }
            return name
        }
        throw AgentError.configuration("the certificate names no agent (expected a URI SAN spiffe://TRUST/agent/NAME)")
    }
}
