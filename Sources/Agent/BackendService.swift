import Foundation
import Tunnel

/// A service the agent forwards to, with what it needs to reach it: address, TLS, and its own credentials.
final class BackendService: Sendable {
    let definition: ServiceDefinition
    let host: String
    let port: UInt16
    let basePath: String
    /// Set for `https` backends.
    let tls: TLSContext?
    let advertised: AdvertisedService

    var key: String { "\(self.definition.type)/\(self.definition.name)" }

    init(definition: ServiceDefinition) throws {
        self.definition = definition
        guard let text = definition.url, let url = URL(string: text), let scheme = url.scheme,
              let host = url.host, scheme == "http" || scheme == "https"
        else {
            throw AgentError.configuration("service \(definition.type)/\(definition.name): url must be http(s)://HOST[:PORT]")
        }
        let secure = scheme == "https"
        self.host = host
        self.port = UInt16(url.port ?? (secure ? 443 : 80))
        self.basePath = url.path == "/" ? "" : url.path
        if secure {
            let trusted = try definition.caFile.map { try Certificate.chain(pem: String(contentsOfFile: $0, encoding: .utf8)) } ?? []
            var chain: [Certificate]?
            var key: PrivateKey?
            if let client = definition.credentials.clientCertificate {
                chain = try Certificate.chain(pem: String(contentsOfFile: client.certFile, encoding: .utf8))
                key = try PrivateKey(pem: String(contentsOfFile: client.keyFile, encoding: .utf8))
            }
            self.tls = try TLSContext.client(certificateChain: chain, key: key, trustedCAs: trusted,
                                             verifyPeer: !definition.insecureSkipVerify, alpn: ["http/1.1"])
            if definition.insecureSkipVerify {
                Log.warning("TLS verification is off for a service", ["service": "\(definition.type)/\(definition.name)"])
            }
        } else {
            self.tls = nil
        }
        self.advertised = AdvertisedService(type: definition.type, name: definition.name,
                                            annotations: definition.annotations)
    }

    /// The headers that authenticate the agent to this backend, read fresh from their files
    /// (rotated tokens take effect on the next request).
    func credentialHeaders() throws -> [(String, String)] {
        let credentials = self.definition.credentials
        if let file = credentials.bearerTokenFile {
            let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return [("Authorization", "Bearer \(token)")]
        }
        if let basic = credentials.basicAuth {
            let user = try String(contentsOfFile: basic.usernameFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            let password = try String(contentsOfFile: basic.passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            return [("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())]
        }
        return []
    }
}

/// Failures of the agent's own setup.
enum AgentError: Error, CustomStringConvertible {
    case configuration(String)

    var description: String {
        switch self {
        case .configuration(let message): message
        }
    }
}
