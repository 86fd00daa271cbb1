import Foundation
import Testing

@testable import Agent
@testable import Tunnel

/// A fresh directory under the system temporary directory, removed when the value is released.
private final class ScratchDirectory {
    let path: String

    init() throws {
        self.path = NSTemporaryDirectory() + "porthole-kubeconfig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    /// `kubeconfig` in the directory; reading the path through the directory keeps the directory alive.
    var kubeconfig: String { "\(self.path)/kubeconfig" }

    /// Writes `contents` to `name` (which may hold subdirectories) and returns the file's path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let file = "\(self.path)/\(name)"
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// The `KubernetesAccessError` that `body` throws, recording an issue if it throws none or another error.
private func accessError(
    _ body: () throws -> KubernetesAccess, sourceLocation: SourceLocation = #_sourceLocation
) -> KubernetesAccessError? {
    do {
        let access = try body()
        Issue.record("expected a KubernetesAccessError, got \(access)", sourceLocation: sourceLocation)
    } catch let error as KubernetesAccessError {
        return error
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

private func pem(_ kind: String, _ body: String) -> String {
    "-----BEGIN \(kind)-----\n\(Data(body.utf8).base64EncodedString())\n-----END \(kind)-----\n"
}

private func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

private let kindCA = pem("CERTIFICATE", "kind ca")
private let kindCertificate = pem("CERTIFICATE", "kind client")
private let kindKey = pem("EC PRIVATE KEY", "kind key")
private let minikubeCA = pem("CERTIFICATE", "minikube ca")
private let minikubeCertificate = pem("CERTIFICATE", "minikube client")
private let minikubeKey = pem("RSA PRIVATE KEY", "minikube key")

/// A kubeconfig as kubectl writes it (keys sorted, sequences at their key's indentation), with three clusters,
/// users and contexts; minikube's files are relative to the kubeconfig.
private let kubectlYAML = """
    apiVersion: v1
    clusters:
    - cluster:
        certificate-authority-data: \(base64(kindCA))
        server: https://127.0.0.1:40123
      name: kind-dev
    - cluster:
        certificate-authority: certs/ca.crt
        extensions:
        - extension:
            last-update: Mon, 01 Jan 2024 10:00:00 UTC
            provider: minikube.sigs.k8s.io
            version: v1.32.0
          name: cluster_info
        server: https://192.168.49.2:8443
      name: minikube
    - cluster:
        insecure-skip-tls-verify: true
        server: "https://[2001:db8::1]:6443"
      name: lab
    contexts:
    - context:
        cluster: kind-dev
        user: kind-dev
      name: kind-dev
    - context:
        cluster: minikube
        namespace: default
        user: minikube
      name: minikube
    - context:
        cluster: lab
        user: lab-admin
      name: lab
    current-context: kind-dev
    kind: Config
    preferences: {}
    users:
    - name: kind-dev
      user:
        client-certificate-data: \(base64(kindCertificate))
        client-key-data: \(base64(kindKey))
    - name: minikube
      user:
        client-certificate: ./certs/client.crt
        client-key: certs/client.key
    - name: lab-admin
      user:
        token: 'abc.def#ghi'

    """

/// The same as `kubectl config view --flatten -o json` writes it (minikube's files inlined).
private let kubectlJSON = """
    {
        "kind": "Config",
        "apiVersion": "v1",
        "preferences": {},
        "clusters": [
            {
                "name": "kind-dev",
                "cluster": {
                    "server": "https://127.0.0.1:40123",
                    "certificate-authority-data": "\(base64(kindCA))"
                }
            },
            {
                "name": "lab",
                "cluster": {
                    "server": "https://[2001:db8::1]:6443",
                    "insecure-skip-tls-verify": true
                }
            }
        ],
        "users": [
            {
                "name": "kind-dev",
                "user": {
                    "client-certificate-data": "\(base64(kindCertificate))",
                    "client-key-data": "\(base64(kindKey))"
                }
            },
            {
                "name": "lab-admin",
                "user": {
                    "token": "abc.def#ghi"
                }
            }
        ],
        "contexts": [
            {
                "name": "kind-dev",
                "context": {
                    "cluster": "kind-dev",
                    "user": "kind-dev"
                }
            },
            {
                "name": "lab",
                "context": {
                    "cluster": "lab",
                    "user": "lab-admin",
                    "namespace": "ops"
                }
            }
        ],
        "current-context": "kind-dev"
    }
    """

@Suite struct KubeconfigFileTests {
    private static let kindAccess = KubernetesAccess(
        server: "https://127.0.0.1:40123", caPEM: kindCA, insecureSkipVerify: false,
        credential: .clientCertificate(certificatePEM: kindCertificate, keyPEM: kindKey))
    private static let labAccess = KubernetesAccess(
        server: "https://[2001:db8::1]:6443", caPEM: nil, insecureSkipVerify: true,
        credential: .bearerToken("abc.def#ghi"))

    /// A directory holding `kubeconfig` (YAML as kubectl writes it) and minikube's files under `certs/`.
    private func kubectlDirectory() throws -> ScratchDirectory {
        let directory = try ScratchDirectory()
        try directory.write("kubeconfig", kubectlYAML)
        try directory.write("certs/ca.crt", minikubeCA)
        try directory.write("certs/client.crt", minikubeCertificate)
        try directory.write("certs/client.key", minikubeKey)
        return directory
    }

    @Test func readsAKubeconfigAsKubectlWritesIt() throws {
        let directory = try self.kubectlDirectory()
        let file = try KubeconfigFile(contentsOfFile: directory.kubeconfig)
        #expect(file.currentContext == "kind-dev")
        #expect(Set(file.clusters.keys) == ["kind-dev", "minikube", "lab"])
        #expect(Set(file.users.keys) == ["kind-dev", "minikube", "lab-admin"])
        #expect(file.contexts["minikube"] == .init(cluster: "minikube", user: "minikube", namespace: "default"))
        #expect(file.clusters["minikube"]?.certificateAuthority == "\(directory.path)/certs/ca.crt")
        #expect(file.clusters["lab"]?.insecureSkipTLSVerify == true)
    }

    @Test func currentContextWithBase64Data() throws {
        let directory = try self.kubectlDirectory()
        #expect(try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: nil) == Self.kindAccess)
        #expect(try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: "") == Self.kindAccess)
    }

    @Test func contextSelection() throws {
        let directory = try self.kubectlDirectory()
        #expect(try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: "lab") == Self.labAccess)
    }

    @Test func relativeFilePathsResolveAgainstTheKubeconfigsDirectory() throws {
        let directory = try self.kubectlDirectory()
        let access = try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: "minikube")
        #expect(
            access
                == KubernetesAccess(
                    server: "https://192.168.49.2:8443", caPEM: minikubeCA, insecureSkipVerify: false,
                    credential: .clientCertificate(certificatePEM: minikubeCertificate, keyPEM: minikubeKey)))
    }

    @Test func jsonKubeconfig() throws {
        let directory = try ScratchDirectory()
        defer { withExtendedLifetime(directory) {} }
        let path = try directory.write("config.json", kubectlJSON)
        #expect(try KubernetesAccess.fromKubeconfig(path: path, context: nil) == Self.kindAccess)
        #expect(try KubernetesAccess.fromKubeconfig(path: path, context: "lab") == Self.labAccess)
        #expect(try KubeconfigFile(contentsOfFile: path).contexts["lab"]?.namespace == "ops")
    }

    /// Tests/Fixtures/issued-kubeconfig.yaml is what the controller's `Kubeconfig` writes (ControllerTests checks it).
    @Test func readsTheKubeconfigsTheControllerIssues() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/issued-kubeconfig.yaml").path
        #expect(
            try KubernetesAccess.fromKubeconfig(path: path, context: nil)
                == KubernetesAccess(
                    server: "https://127.0.0.1:18443", caPEM: kindCA, insecureSkipVerify: false,
                    credential: .clientCertificate(certificatePEM: minikubeCertificate, keyPEM: minikubeKey)))
    }

    @Test func tokenFileIsKeptAsAPathAndWinsOverToken() throws {
        let directory = try ScratchDirectory()
        defer { withExtendedLifetime(directory) {} }
        try directory.write("secrets/token", "file-token\n")
        let path = try directory.write(
            "kubeconfig",
            """
            clusters:
            - name: c
              cluster:
                server: https://api.example.com
            users:
            - name: u
              user:
                token: literal
                tokenFile: secrets/token
            contexts:
            - name: x
              context:
                cluster: c
                user: u
            """)
        let access = try KubernetesAccess.fromKubeconfig(path: path, context: "x")
        #expect(access.credential == .bearerTokenFile("\(directory.path)/secrets/token"))
        #expect(access.caPEM == nil)
        #expect(access.server == "https://api.example.com")
    }

    @Test func contextWithoutUserHasNoCredential() throws {
        let directory = try ScratchDirectory()
        defer { withExtendedLifetime(directory) {} }
        let path = try directory.write(
            "kubeconfig",
            """
            clusters:
            - name: c
              cluster:
                server: https://a
            contexts:
            - name: x
              context:
                cluster: c
            current-context: x
            """)
        #expect(try KubernetesAccess.fromKubeconfig(path: path, context: nil).credential == .none)
    }

    /// A kubeconfig whose context `x` joins cluster `c` (server only) to user `u` with `userYAML` (indented 4).
    private func kubeconfig(user userYAML: String, cluster clusterYAML: String = "") throws -> ScratchDirectory {
        let directory = try ScratchDirectory()
        try directory.write(
            "kubeconfig",
            """
            clusters:
            - name: c
              cluster:
                server: https://api.example.com:6443
            \(clusterYAML)
            users:
            - name: u
              user:
            \(userYAML)
            contexts:
            - name: x
              context:
                cluster: c
                user: u
            current-context: x
            """)
        return directory
    }

    @Test func execPluginIsRefused() throws {
        let directory = try self.kubeconfig(
            user: """
                    exec:
                      apiVersion: client.authentication.k8s.io/v1beta1
                      command: aws
                      args:
                      - eks
                      - get-token
                      env: null
                      interactiveMode: IfAvailable
                      provideClusterInfo: false
                """)
        let error = accessError { try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: nil) }
        #expect(error == .unsupportedUser(user: "u", mechanism: "an exec credential plugin (aws)"))
        #expect(
            error?.description
                == "user u uses an exec credential plugin (aws); Porthole's agent needs a token, token file or "
                + "client certificate — see docs/configuration.md")
    }

    @Test func authProviderAndBasicAuthenticationAreRefused() throws {
        let gcpDirectory = try self.kubeconfig(user: "    auth-provider:\n      name: gcp\n      config: {}")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: gcpDirectory.kubeconfig, context: nil) }
                == .unsupportedUser(user: "u", mechanism: "the \"gcp\" auth provider"))
        let basicDirectory = try self.kubeconfig(user: "    username: admin\n    password: hunter2")
        let error = accessError { try KubernetesAccess.fromKubeconfig(path: basicDirectory.kubeconfig, context: nil) }
        #expect(error == .unsupportedUser(user: "u", mechanism: "basic authentication (username/password)"))
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test func ambiguousOrIncompleteUsersAreRefused() throws {
        let bothDirectory = try self.kubeconfig(
            user: """
                    token: t
                    client-certificate-data: \(base64(kindCertificate))
                    client-key-data: \(base64(kindKey))
                """)
        guard
            case .invalidEntry(_, "user \"u\"", let reason)? = accessError({
                try KubernetesAccess.fromKubeconfig(path: bothDirectory.kubeconfig, context: nil)
            })
        else { return }
        #expect(reason.contains("more than one kind of credential"))

        let noKeyDirectory = try self.kubeconfig(user: "    client-certificate-data: \(base64(kindCertificate))")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: noKeyDirectory.kubeconfig, context: nil) }
                == .invalidEntry(
                    path: noKeyDirectory.kubeconfig, entry: "user \"u\"",
                    reason: "has a client certificate but no client key"))
    }

    @Test func contextErrors() throws {
        let directory = try self.kubectlDirectory()
        let missing = accessError { try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: "prod") }
        #expect(
            missing
                == .contextNotFound(
                    context: "prod", path: directory.kubeconfig, available: ["kind-dev", "lab", "minikube"]))
        #expect(
            missing?.description
                == "kubeconfig \(directory.kubeconfig) has no context \"prod\" (it has: kind-dev, lab, minikube)")

        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let noCurrent = try scratch.write("a", "clusters: []\ncontexts: []\nusers: []\ncurrent-context: \"\"\n")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: noCurrent, context: nil) }
                == .noCurrentContext(path: noCurrent))

        let dangling = try scratch.write(
            "b", "contexts:\n- name: x\n  context:\n    cluster: gone\n    user: u\ncurrent-context: x\n")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: dangling, context: nil) }
                == .clusterNotFound(cluster: "gone", context: "x", path: dangling))

        let noUserDirectory = try self.kubeconfig(user: "    token: t")
        let text = try String(contentsOfFile: noUserDirectory.kubeconfig, encoding: .utf8).replacingOccurrences(
            of: "user: u", with: "user: v")
        try text.write(toFile: noUserDirectory.kubeconfig, atomically: true, encoding: .utf8)
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: noUserDirectory.kubeconfig, context: nil) }
                == .userNotFound(user: "v", context: "x", path: noUserDirectory.kubeconfig))
    }

    @Test func clusterErrors() throws {
        let badBase64Directory = try self.kubeconfig(
            user: "    token: t", cluster: "    certificate-authority-data: not*base64")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: badBase64Directory.kubeconfig, context: nil) }
                == .invalidEntry(
                    path: badBase64Directory.kubeconfig, entry: "cluster \"c\" certificate-authority-data",
                    reason: "is not valid base64"))

        let notPEMDirectory = try self.kubeconfig(
            user: "    token: t", cluster: "    certificate-authority-data: \(base64("hello"))")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: notPEMDirectory.kubeconfig, context: nil) }
                == .invalidPEM(source: "cluster \"c\" certificate-authority-data", expected: "CERTIFICATE"))

        let directory = try self.kubeconfig(user: "    token: t", cluster: "    certificate-authority: nope.crt")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: directory.kubeconfig, context: nil) }
                == .unreadableFile(
                    path: "\(directory.path)/nope.crt", what: "certificate authority",
                    reason: "No such file or directory"))

        let bothDirectory = try self.kubeconfig(
            user: "    token: t",
            cluster: "    insecure-skip-tls-verify: true\n    certificate-authority-data: \(base64(kindCA))")
        guard
            case .invalidEntry(_, "cluster \"c\"", let reason)? = accessError({
                try KubernetesAccess.fromKubeconfig(path: bothDirectory.kubeconfig, context: nil)
            })
        else { return }
        #expect(reason.contains("insecure-skip-tls-verify"))

        let badFlagDirectory = try self.kubeconfig(user: "    token: t", cluster: "    insecure-skip-tls-verify: maybe")
        guard
            case .malformedKubeconfig(_, let flagReason)? = accessError({
                try KubernetesAccess.fromKubeconfig(path: badFlagDirectory.kubeconfig, context: nil)
            })
        else { return }
        #expect(flagReason == "clusters[\"c\"].cluster.insecure-skip-tls-verify must be true or false, not \"maybe\"")
    }

    @Test func malformedKubeconfigsNameTheLineOrField() throws {
        let directory = try ScratchDirectory()
        defer { withExtendedLifetime(directory) {} }
        let tabbed = try directory.write("tabbed", "apiVersion: v1\nclusters:\n- name: c\n\tcluster: {}\n")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: tabbed, context: nil) }
                == .malformedKubeconfig(
                    path: tabbed, reason: "line 4: tab used for indentation; YAML allows spaces only"))

        let wrongType = try directory.write("wrong", "clusters: everything\n")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: wrongType, context: nil) }
                == .malformedKubeconfig(path: wrongType, reason: "clusters must be a list of `- name: …` entries"))

        let duplicate = try directory.write("dup", "users:\n- name: a\n- name: a\n")
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: duplicate, context: nil) }
                == .malformedKubeconfig(path: duplicate, reason: "users has two entries named \"a\""))

        let missing = "\(directory.path)/absent"
        #expect(
            accessError { try KubernetesAccess.fromKubeconfig(path: missing, context: nil) }
                == .unreadableFile(path: missing, what: "kubeconfig", reason: "No such file or directory"))
    }

    @Test func descriptionLeavesSecretsOut() {
        let access = KubernetesAccess(
            server: "https://a:6443", caPEM: kindCA, insecureSkipVerify: false,
            credential: .clientCertificate(certificatePEM: kindCertificate, keyPEM: "SECRET-KEY"))
        #expect(access.description == "https://a:6443 (given CA, client certificate)")
        #expect(!String(reflecting: access).contains("SECRET"))
        let token = KubernetesAccess(
            server: "https://a", caPEM: nil, insecureSkipVerify: false, credential: .bearerToken("SECRET-TOKEN"))
        #expect("\(token)" == "https://a (system roots, bearer token)")
    }
}

@Suite struct KubernetesInClusterAccessTests {
    private func serviceAccount() throws -> ScratchDirectory {
        let directory = try ScratchDirectory()
        try directory.write("token", "eyJ.service.account\n")
        try directory.write("ca.crt", kindCA)
        try directory.write("namespace", "porthole")
        return directory
    }

    @Test func readsTheEnvironmentAndTheServiceAccountMount() throws {
        let directory = try self.serviceAccount()
        defer { withExtendedLifetime(directory) {} }
        let access = try KubernetesAccess.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: directory.path + "/")
        #expect(
            access
                == KubernetesAccess(
                    server: "https://10.96.0.1:443", caPEM: kindCA, insecureSkipVerify: false,
                    credential: .bearerTokenFile("\(directory.path)/token")))
    }

    @Test func bracketsAnIPv6Host() throws {
        let directory = try self.serviceAccount()
        defer { withExtendedLifetime(directory) {} }
        let access = try KubernetesAccess.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "::1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: directory.path)
        #expect(access.server == "https://[::1]:443")
    }

    @Test func missingEnvironmentIsNamed() throws {
        let directory = try self.serviceAccount()
        defer { withExtendedLifetime(directory) {} }
        let noHost = accessError {
            try KubernetesAccess.inCluster(
                environment: ["KUBERNETES_SERVICE_PORT": "443"], serviceAccountDirectory: directory.path)
        }
        #expect(noHost == .missingEnvironment(variable: "KUBERNETES_SERVICE_HOST"))
        #expect(noHost?.description.hasPrefix("KUBERNETES_SERVICE_HOST is not set") == true)
        #expect(
            accessError {
                try KubernetesAccess.inCluster(
                    environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1"], serviceAccountDirectory: directory.path)
            } == .missingEnvironment(variable: "KUBERNETES_SERVICE_PORT"))
        #expect(
            accessError {
                try KubernetesAccess.inCluster(
                    environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"],
                    serviceAccountDirectory: directory.path)
            }
                == .invalidEnvironment(
                    variable: "KUBERNETES_SERVICE_PORT", value: "https", reason: "is not a port number"))
    }

    @Test func missingServiceAccountFilesAreNamed() throws {
        let environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let empty = try ScratchDirectory()
        defer { withExtendedLifetime(empty) {} }
        guard
            case .unreadableFile(let tokenPath, "service-account token", let reason)? = accessError({
                try KubernetesAccess.inCluster(environment: environment, serviceAccountDirectory: empty.path)
            })
        else { return }
        #expect(tokenPath == "\(empty.path)/token")
        #expect(reason.contains("automountServiceAccountToken"))

        try empty.write("token", "t")
        guard
            case .unreadableFile(let caPath, "service-account CA", _)? = accessError({
                try KubernetesAccess.inCluster(environment: environment, serviceAccountDirectory: empty.path)
            })
        else { return }
        #expect(caPath == "\(empty.path)/ca.crt")
    }
}
