import Dispatch
import Foundation
import Synchronization
import Tunnel

/// A service the agent forwards to, with what it needs to reach it: address, TLS, and its own credentials.
///
/// For `kubernetes` services the address, CA and credentials may come from the pod's service account
/// (`inCluster`) or from a kubeconfig instead of the services file.
final class BackendService: Sendable {
    let definition: ServiceDefinition
    let host: String
    let port: UInt16
    let basePath: String
    /// Set for `https` backends.
    let tls: TLSContext?
    let advertised: AdvertisedService
    /// While the service is down every request fails the same way: one line per interval, with a count.
    let unreachableLog = RateLimitedLog()
    private let credential: BackendCredential

    var key: String { "\(self.definition.type)/\(self.definition.name)" }

    init(definition: ServiceDefinition) throws {
        self.definition = definition
        let access = try Self.access(for: definition)
        guard let url = URL(string: access.server), let scheme = url.scheme?.lowercased(), let host = url.host,
              scheme == "http" || scheme == "https"
        else {
            throw AgentError.configuration("service \(definition.type)/\(definition.name): "
                                           + "\(access.server) is not an http(s)://HOST[:PORT] URL")
        }
        let secure = scheme == "https"
        self.host = host
        self.port = UInt16(url.port ?? (secure ? 443 : 80))
        self.basePath = url.path == "/" ? "" : url.path
        self.credential = BackendCredential(access.credential)
        if secure {
            let trusted = try access.caPEM.map { try Certificate.chain(pem: $0) } ?? []
            var chain: [Certificate]?
            var key: PrivateKey?
            if case .clientCertificate(let certificatePEM, let keyPEM) = access.credential {
                chain = try Certificate.chain(pem: certificatePEM)
                key = try PrivateKey(pem: keyPEM)
            }
            self.tls = try TLSContext.client(certificateChain: chain, key: key, trustedCAs: trusted,
                                             verifyPeer: !access.insecureSkipVerify, alpn: ["http/1.1"],
                                             allowTLS12: true)
            if access.insecureSkipVerify {
                Log.warning("TLS verification is off for a service: its certificate is not checked",
                            ["service": "\(definition.type)/\(definition.name)"])
            }
        } else {
            self.tls = nil
        }
        self.advertised = AdvertisedService(type: definition.type, name: definition.name,
                                            annotations: definition.annotations)
        Log.info("service ready", ["service": self.key, "server": access.description])
    }

    /// Where and how to reach the service, from the services file, the service account, or a kubeconfig.
    private static func access(for definition: ServiceDefinition) throws -> KubernetesAccess {
        if definition.type == "kubernetes", let path = definition.kubeconfig {
            var access = try KubernetesAccess.fromKubeconfig(path: path, context: definition.context)
            if let url = definition.url { access.server = url }
            return access
        }
        if definition.type == "kubernetes", definition.isInCluster || definition.url == nil {
            var access = try KubernetesAccess.inCluster(
                serviceAccountDirectory: definition.serviceAccountDirectory
                    ?? "/var/run/secrets/kubernetes.io/serviceaccount")
            if let url = definition.url { access.server = url }
            if let caFile = definition.caFile { access.caPEM = try TextFile.read(caFile, role: "service CA bundle") }
            if definition.insecureSkipVerify { access.insecureSkipVerify = true }
            if definition.credentials.kind != .none { access.credential = try Self.credential(definition) }
            return access
        }
        guard let url = definition.url else {
            throw AgentError.configuration("service \(definition.type)/\(definition.name) has no url")
        }
        return KubernetesAccess(
            server: url, caPEM: try definition.caFile.map { try TextFile.read($0, role: "service CA bundle") },
            insecureSkipVerify: definition.insecureSkipVerify, credential: try Self.credential(definition))
    }

    private static func credential(_ definition: ServiceDefinition) throws -> KubernetesAccess.Credential {
        let credentials = definition.credentials
        if let file = credentials.bearerTokenFile { return .bearerTokenFile(file) }
        if let client = credentials.clientCertificate {
            return .clientCertificate(certificatePEM: try TextFile.read(client.certFile, role: "service client certificate"),
                                      keyPEM: try TextFile.read(client.keyFile, role: "service client key"))
        }
        if let basic = credentials.basicAuth {
            return .basicAuthFiles(username: basic.usernameFile, password: basic.passwordFile)
        }
        return .none
    }

    /// The headers that authenticate the agent to this backend.
    func credentialHeaders() throws -> [(String, String)] {
        try self.credential.headers()
    }
}

/// The agent's credential for one backend, as headers; token and password files are re-read when they change
/// (projected service-account tokens rotate), and only then.
///
/// The files are looked at (`stat`) at most once per `recheckInterval`, not on every request: the request path runs
/// on a tunnel's event loop, and a rotated token is picked up within that interval.
final class BackendCredential: Sendable {
    private let credential: KubernetesAccess.Credential
    private let recheckInterval: UInt64
    private let cache = Mutex<(fingerprint: String, headers: [(String, String)], checkedAt: UInt64)?>(nil)

    init(_ credential: KubernetesAccess.Credential, recheckInterval: Double = 1) {
        self.credential = credential
        self.recheckInterval = UInt64(recheckInterval * 1e9)
    }

    func headers() throws -> [(String, String)] {
        switch self.credential {
        case .none, .clientCertificate:
            return []
        case .bearerToken(let token):
            return [("Authorization", "Bearer \(token)")]
        case .bearerTokenFile(let path):
            return try self.cached([path]) {
                let token = try TextFile.read(path, role: "bearer token file")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                return [("Authorization", "Bearer \(token)")]
            }
        case .basicAuthFiles(let usernameFile, let passwordFile):
            return try self.cached([usernameFile, passwordFile]) {
                let user = try TextFile.read(usernameFile, role: "basic-auth username file").trimmingCharacters(in: .newlines)
                let password = try TextFile.read(passwordFile, role: "basic-auth password file")
                    .trimmingCharacters(in: .newlines)
                return [("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())]
            }
        }
    }

    private func cached(_ paths: [String], read: () throws -> [(String, String)]) throws -> [(String, String)] {
        let now = DispatchTime.now().uptimeNanoseconds
        let hit = self.cache.withLock { $0 }
        if let hit, now &- hit.checkedAt < self.recheckInterval { return hit.headers }
        let fingerprint = FileFingerprint.of(paths)
        if let hit, hit.fingerprint == fingerprint {
            self.cache.withLock { $0?.checkedAt = now }
            return hit.headers
        }
        let headers = try read()
        self.cache.withLock { $0 = (fingerprint, headers, now) }
        return headers
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
