import Foundation
import Tunnel

/// Where and how the agent reaches an API server, with nothing secret logged.
///
/// Built from the pod's service-account mount (`inCluster`) or from a kubeconfig (`fromKubeconfig`). Files that
/// rotate (the service-account token, a kubeconfig `tokenFile`) stay paths for the client to re-read; everything
/// else is read once, here, so a missing or malformed file is reported at start-up.
package struct KubernetesAccess: Sendable, Equatable {
    /// How requests authenticate to the API server.
    package enum Credential: Sendable, Equatable {
        /// `Authorization: Bearer` with a literal token from a kubeconfig `token`.
        case bearerToken(String)
        /// `Authorization: Bearer` with the contents of this file, re-read when it changes (service-account
        /// token, kubeconfig `tokenFile`).
        case bearerTokenFile(String)
        /// TLS client authentication.
        case clientCertificate(certificatePEM: String, keyPEM: String)
        /// Basic auth read from two files (a services-file credential; kubeconfigs' basic auth is refused).
        case basicAuthFiles(username: String, password: String)
        /// Nothing added.
        case none
    }

    /// `https://host:port` (or whatever URL the kubeconfig gives, path prefix included).
    package var server: String
    /// PEM of the CA that verifies the API server; nil means the system roots.
    package var caPEM: String?
    /// Whether the API server's certificate goes unverified (kubeconfig `insecure-skip-tls-verify`).
    package var insecureSkipVerify: Bool
    /// How requests authenticate.
    package var credential: Credential

    /// Every field given.
    package init(server: String, caPEM: String?, insecureSkipVerify: Bool, credential: Credential) {
        self.server = server
        self.caPEM = caPEM
        self.insecureSkipVerify = insecureSkipVerify
        self.credential = credential
    }

    /// In a cluster: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` from `environment` (an IPv6 host is
    /// bracketed), the token file and `ca.crt` from `serviceAccountDirectory`. The token stays a path, as it rotates.
    ///
    /// - Throws: `KubernetesAccessError.missingEnvironment`, `.invalidEnvironment`, `.unreadableFile` or
    ///   `.invalidCertificate`, naming what is missing.
    package static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws(KubernetesAccessError) -> KubernetesAccess {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw .missingEnvironment(variable: "KUBERNETES_SERVICE_HOST")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw .missingEnvironment(variable: "KUBERNETES_SERVICE_PORT")
        }
        guard let number = Int(port), (1...65535).contains(number) else {
            throw .invalidEnvironment(variable: "KUBERNETES_SERVICE_PORT", value: port, reason: "is not a port number")
        }
        let bracketedHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host

        var directory = serviceAccountDirectory
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        let tokenFile = "\(directory)/token"
        let caFile = "\(directory)/ca.crt"
        let hint = " (is automountServiceAccountToken false for the pod or its service account?)"
        do {
            _ = try Self.readFile(tokenFile, what: "service-account token")
        } catch .unreadableFile(let path, let what, let reason) {
            throw .unreadableFile(path: path, what: what, reason: reason + hint)
        }
        let caData: Data
        do {
            caData = try Self.readFile(caFile, what: "service-account CA")
        } catch .unreadableFile(let path, let what, let reason) {
            throw .unreadableFile(path: path, what: what, reason: reason + hint)
        }
        return KubernetesAccess(
            server: "https://\(bracketedHost):\(number)",
            caPEM: try Self.pem(caData, kind: "CERTIFICATE", source: caFile),
            insecureSkipVerify: false,
            credential: .bearerTokenFile(tokenFile))
    }

    /// Out of a cluster: the cluster and user of `context` (nil or empty: the current context) in the kubeconfig at
    /// `path`.
    ///
    /// Data fields win over file fields (`certificate-authority-data` over `certificate-authority`, likewise the
    /// client certificate and key) and `tokenFile` over `token`, as in kubectl. Relative file paths are relative to
    /// the kubeconfig's directory. Users with an `exec` plugin, an `auth-provider` or a username and password are
    /// refused; so is a user with more than one kind of credential.
    ///
    /// - Throws: `KubernetesAccessError`, saying what to change.
    package static func fromKubeconfig(path: String, context: String?) throws(KubernetesAccessError) -> KubernetesAccess
    {
        let file = try KubeconfigFile(contentsOfFile: path)
        let contextName: String
        if let context, !context.isEmpty {
            contextName = context
        } else if let current = file.currentContext {
            contextName = current
        } else {
            throw .noCurrentContext(path: path)
        }
        guard let selected = file.contexts[contextName] else {
            throw .contextNotFound(context: contextName, path: path, available: file.contexts.keys.sorted())
        }
        guard !selected.cluster.isEmpty else {
            throw .invalidEntry(path: path, entry: "context \"\(contextName)\"", reason: "names no cluster")
        }
        guard let cluster = file.clusters[selected.cluster] else {
            throw .clusterNotFound(cluster: selected.cluster, context: contextName, path: path)
        }
        var access = try Self.clusterAccess(cluster, name: selected.cluster, path: path)
        if !selected.user.isEmpty {
            guard let user = file.users[selected.user] else {
                throw .userNotFound(user: selected.user, context: contextName, path: path)
            }
            access.credential = try Self.credential(user, name: selected.user, path: path)
        }
        return access
    }

    private static func clusterAccess(
        _ cluster: KubeconfigFile.Cluster, name: String, path: String
    ) throws(KubernetesAccessError) -> KubernetesAccess {
        let entry = "cluster \"\(name)\""
        guard let server = cluster.server, !server.isEmpty else {
            throw .invalidEntry(path: path, entry: entry, reason: "has no server")
        }
        guard let url = URLComponents(string: server), url.scheme == "https" || url.scheme == "http",
            let host = url.host, !host.isEmpty
        else {
            throw .invalidEntry(path: path, entry: entry, reason: "has server \"\(server)\", which is not an https URL")
        }
        var caPEM: String?
        if let data = cluster.certificateAuthorityData, !data.isEmpty {
            let field = "\(entry) certificate-authority-data"
            caPEM = try Self.pem(try Self.base64(data, field: field, path: path), kind: "CERTIFICATE", source: field)
        } else if let file = cluster.certificateAuthority {
            caPEM = try Self.pem(
                try Self.readFile(file, what: "certificate authority"), kind: "CERTIFICATE", source: file)
        }
        if cluster.insecureSkipTLSVerify && caPEM != nil {
            throw .invalidEntry(
                path: path, entry: entry,
                reason: "sets both a certificate authority and insecure-skip-tls-verify; remove one")
        }
        return KubernetesAccess(
            server: server, caPEM: caPEM, insecureSkipVerify: cluster.insecureSkipTLSVerify, credential: .none)
    }

    private static func credential(
        _ user: KubeconfigFile.User, name: String, path: String
    ) throws(KubernetesAccessError) -> Credential {
        if let command = user.execCommand {
            let plugin = command.isEmpty ? "" : " (\(command))"
            throw .unsupportedUser(user: name, mechanism: "an exec credential plugin\(plugin)")
        }
        if let provider = user.authProviderName {
            let named = provider.isEmpty ? "" : " \"\(provider)\""
            throw .unsupportedUser(user: name, mechanism: "the\(named) auth provider")
        }
        let hasToken = user.token?.isEmpty == false || user.tokenFile != nil
        let hasCertificate =
            user.clientCertificateData?.isEmpty == false || user.clientCertificate != nil
            || user.clientKeyData?.isEmpty == false || user.clientKey != nil
        let hasBasic = user.username?.isEmpty == false || user.password?.isEmpty == false
        let entry = "user \"\(name)\""
        guard [hasToken, hasCertificate, hasBasic].filter({ $0 }).count <= 1 else {
            throw .invalidEntry(
                path: path, entry: entry,
                reason: "has more than one kind of credential (token, client certificate, username/password); "
                    + "Porthole's agent uses exactly one")
        }
        if hasBasic {
            throw .unsupportedUser(user: name, mechanism: "basic authentication (username/password)")
        }
        if let tokenFile = user.tokenFile {
            _ = try Self.readFile(tokenFile, what: "token file")
            return .bearerTokenFile(tokenFile)
        }
        if let token = user.token, !token.isEmpty {
            return .bearerToken(token)
        }
        guard hasCertificate else { return .none }
        let certificatePEM: String
        if let data = user.clientCertificateData, !data.isEmpty {
            let field = "\(entry) client-certificate-data"
            certificatePEM = try Self.pem(
                try Self.base64(data, field: field, path: path), kind: "CERTIFICATE", source: field)
        } else if let file = user.clientCertificate {
            certificatePEM = try Self.pem(
                try Self.readFile(file, what: "client certificate"), kind: "CERTIFICATE", source: file)
        } else {
            throw .invalidEntry(path: path, entry: entry, reason: "has a client key but no client certificate")
        }
        let keyPEM: String
        if let data = user.clientKeyData, !data.isEmpty {
            let field = "\(entry) client-key-data"
            keyPEM = try Self.pem(try Self.base64(data, field: field, path: path), kind: "PRIVATE KEY", source: field)
        } else if let file = user.clientKey {
            keyPEM = try Self.pem(try Self.readFile(file, what: "client key"), kind: "PRIVATE KEY", source: file)
        } else {
            throw .invalidEntry(path: path, entry: entry, reason: "has a client certificate but no client key")
        }
        return .clientCertificate(certificatePEM: certificatePEM, keyPEM: keyPEM)
    }

    // MARK: Files and encodings

    /// The whole file at `path`; `what` names it in the error.
    static func readFile(_ path: String, what: String) throws(KubernetesAccessError) -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .unreadableFile(path: path, what: what, reason: String(cString: strerror(errno)))
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            let error = error as NSError
            let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError
            let reason =
                underlying.map { String(cString: strerror(Int32($0.code))) } ?? error.localizedDescription
            throw .unreadableFile(path: path, what: what, reason: reason)
        }
    }

    /// Standard base64 as Go writes `[]byte` fields; white space (from hand-wrapped values) is ignored.
    private static func base64(_ text: String, field: String, path: String) throws(KubernetesAccessError) -> Data {
        let compact = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw .invalidEntry(path: path, entry: field, reason: "is not valid base64")
        }
        return data
    }

    /// `data` as PEM text holding at least one `kind` block (`PRIVATE KEY` also matches `EC PRIVATE KEY`, `RSA …`).
    private static func pem(_ data: Data, kind: String, source: String) throws(KubernetesAccessError) -> String {
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN "),
            text.range(of: "\(kind)-----") != nil
        else {
            throw .invalidPEM(source: source, expected: kind)
        }
        return text
    }
}

extension KubernetesAccess: CustomStringConvertible, CustomDebugStringConvertible {
    /// Server, trust and credential kind, with tokens and keys left out, for logs.
    package var description: String {
        let trust =
            self.insecureSkipVerify ? "certificate not verified" : self.caPEM == nil ? "system roots" : "given CA"
        let credential =
            switch self.credential {
            case .bearerToken: "bearer token"
            case .bearerTokenFile(let path): "bearer token from \(path)"
            case .clientCertificate: "client certificate"
            case .basicAuthFiles(let username, _): "basic auth from \(username)"
            case .none: "no credentials"
            }
        return "\(self.server) (\(trust), \(credential))"
    }

    /// The same as `description`, so `dump` and `debugPrint` cannot leak a token or key either.
    package var debugDescription: String { self.description }
}

/// Why the agent cannot reach its API server from the environment or kubeconfig given; each message says what to
/// change.
package enum KubernetesAccessError: UserFileError, Equatable, Sendable, CustomStringConvertible {
    /// In-cluster: an environment variable Kubernetes sets in every pod is missing or empty.
    case missingEnvironment(variable: String)
    /// In-cluster: such a variable has an unusable value.
    case invalidEnvironment(variable: String, value: String, reason: String)
    /// A file could not be read: the service-account token or CA, the kubeconfig, or a file it names.
    case unreadableFile(path: String, what: String, reason: String)
    /// The kubeconfig is not YAML or JSON of the kubeconfig shape; `reason` names the line or field.
    case malformedKubeconfig(path: String, reason: String)
    /// No context was asked for and the kubeconfig has no `current-context`.
    case noCurrentContext(path: String)
    /// The context asked for is not in the kubeconfig; `available` lists the ones that are.
    case contextNotFound(context: String, path: String, available: [String])
    /// The context names a cluster the kubeconfig does not define.
    case clusterNotFound(cluster: String, context: String, path: String)
    /// The context names a user the kubeconfig does not define.
    case userNotFound(user: String, context: String, path: String)
    /// The user authenticates in a way the agent cannot use (exec plugin, auth provider, basic authentication).
    case unsupportedUser(user: String, mechanism: String)
    /// A cluster, context or user entry is unusable: `entry` names it (`cluster "prod"`), `reason` says why.
    case invalidEntry(path: String, entry: String, reason: String)
    /// A certificate or key (a file, or a `…-data` field) is not PEM of the kind expected.
    case invalidPEM(source: String, expected: String)

    /// One line, without the `error:` prefix.
    package var description: String {
        switch self {
        case .missingEnvironment(let variable):
            "\(variable) is not set, so the agent is not running in a Kubernetes pod; run it in one or give it a "
                + "kubeconfig"
        case .invalidEnvironment(let variable, let value, let reason):
            "\(variable)=\(Log.jsonString(value)) \(reason)"
        case .unreadableFile(let path, let what, let reason):
            "cannot read \(what) \(path): \(reason)"
        case .malformedKubeconfig(let path, let reason):
            "kubeconfig \(path): \(reason)"
        case .noCurrentContext(let path):
            "kubeconfig \(path) has no current-context; name the context to use"
        case .contextNotFound(let context, let path, let available):
            "kubeconfig \(path) has no context \"\(context)\""
                + (available.isEmpty ? " (it has no contexts)" : " (it has: \(available.joined(separator: ", ")))")
        case .clusterNotFound(let cluster, let context, let path):
            "context \"\(context)\" in kubeconfig \(path) names cluster \"\(cluster)\", which is not defined there"
        case .userNotFound(let user, let context, let path):
            "context \"\(context)\" in kubeconfig \(path) names user \"\(user)\", which is not defined there"
        case .unsupportedUser(let user, let mechanism):
            "user \(user) uses \(mechanism); Porthole's agent needs a token, token file or client certificate — "
                + "see docs/configuration.md"
        case .invalidEntry(let path, let entry, let reason):
            "kubeconfig \(path): \(entry) \(reason)"
        case .invalidPEM(let source, let expected):
            "\(source) is not PEM holding a \(expected)"
        }
    }
}
