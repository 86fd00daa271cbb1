import Tunnel

/// One backend service an agent serves: its type and name (how users address it), where it is, and the
/// credentials the agent adds.
package struct ServiceDefinition: Codable, Sendable, Equatable {
    /// `kubernetes`, `jenkins`, `argocd`, or a custom `x-…` type; lowercase letters, digits and '-'.
    package var type: String
    /// Unique among services of the same type on this agent; letters, digits, '.', '_', '-'.
    package var name: String
    /// `http` or `https` base URL of the backend; required unless `type` is kubernetes and `inCluster` is true.
    package var url: String?
    /// For kubernetes: reach the API server through the pod's service account (address, CA and token from the
    /// standard mount and environment).
    package var inCluster: Bool?
    /// Credentials the agent adds to every request; `{}` adds none.
    package var credentials: ServiceCredentials
    /// PEM CA bundle that verifies an https backend; nil uses the system roots (or the in-cluster CA).
    package var caFile: String?
    /// Skip verifying the backend's certificate; for tests only.
    package var insecureSkipVerify: Bool
    /// Labels shown to users in the agent list.
    package var annotations: [String: String]
    /// For kubernetes out of a cluster: a kubeconfig file giving the server, its CA and the agent's credentials.
    package var kubeconfig: String?
    /// The kubeconfig context to use; nil uses its current-context.
    package var context: String?
    /// For kubernetes in a cluster: where the service-account token and `ca.crt` are mounted.
    package var serviceAccountDirectory: String?
    /// Keep-alive connections to the backend kept idle per tunnel for the next requests; 0 closes each one after
    /// its response.
    package var maxIdleConnections: Int
    /// For kubernetes: send the gateway identity the controller verified as `Impersonate-User`/`Impersonate-Group`.
    package var impersonate = false

    /// What `maxIdleConnections` is when the file does not say: enough that 16 connections × 8 streams never
    /// close and redial a backend connection between requests.
    package static let defaultMaxIdleConnections = 256

    /// A service; only `type` and `name` are required.
    package init(
        type: String, name: String, url: String? = nil, inCluster: Bool? = nil,
        credentials: ServiceCredentials = .none, caFile: String? = nil, insecureSkipVerify: Bool = false,
        annotations: [String: String] = [:]
    ) {
        self.type = type
        self.name = name
        self.url = url
        self.inCluster = inCluster
        self.credentials = credentials
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.annotations = annotations
        self.maxIdleConnections = Self.defaultMaxIdleConnections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, name, url, inCluster, credentials, caFile, insecureSkipVerify, annotations, kubeconfig, context
        case serviceAccountDirectory, maxIdleConnections, impersonate
    }

    /// Decodes one entry of `services`; `type` and `name` are required, unknown fields are an error.
    package init(from decoder: any Decoder) throws {
        try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.type = try container.decode(String.self, forKey: .type)
        self.name = try container.decode(String.self, forKey: .name)
        self.url = try container.decodeIfPresent(String.self, forKey: .url)
        self.inCluster = try container.decodeIfPresent(Bool.self, forKey: .inCluster)
        self.credentials = try container.decodeIfPresent(ServiceCredentials.self, forKey: .credentials) ?? .none
        self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        self.insecureSkipVerify = try container.decodeIfPresent(Bool.self, forKey: .insecureSkipVerify) ?? false
        self.annotations = try container.decodeIfPresent([String: String].self, forKey: .annotations) ?? [:]
        self.kubeconfig = try container.decodeIfPresent(String.self, forKey: .kubeconfig)
        self.context = try container.decodeIfPresent(String.self, forKey: .context)
        self.serviceAccountDirectory = try container.decodeIfPresent(String.self, forKey: .serviceAccountDirectory)
        self.impersonate = try container.decodeIfPresent(Bool.self, forKey: .impersonate) ?? false
        self.maxIdleConnections = try container.decodeIfPresent(Int.self, forKey: .maxIdleConnections)
            ?? Self.defaultMaxIdleConnections
    }

    /// Whether the backend is the API server of the cluster the agent runs in.
    package var isInCluster: Bool { self.type == "kubernetes" && self.inCluster == true }

    /// Checks every field; `field` (e.g. `services[2]`) prefixes the failing field's name in the error.
    package func validate(field: String) throws {
        func fail(_ name: String, _ reason: String) -> ConfigurationError {
            .invalid(field: "\(field).\(name)", reason: reason)
        }
        let typeCharacters = self.type.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
        guard !self.type.isEmpty, typeCharacters else {
            throw fail("type", "\"\(self.type)\" must be lowercase letters, digits and '-'")
        }
        guard ServiceTypes.isKnown(self.type) else {
            throw fail(
                "type",
                "\"\(self.type)\" is not one of \(ServiceTypes.builtIn.joined(separator: ", ")); custom types "
                    + "start with \"x-\"")
        }
        guard ConfigurationValidation.isName(self.name) else {
            throw fail("name", "\"\(self.name)\" must be non-empty letters, digits, '.', '_' or '-'")
        }
        if self.inCluster == true, self.type != "kubernetes" {
            throw fail("inCluster", "only applies to type kubernetes")
        }
        if self.impersonate, self.type != "kubernetes" { throw fail("impersonate", "only applies to type kubernetes") }
        if self.type != "kubernetes" {
            for (name, value) in [("kubeconfig", self.kubeconfig), ("context", self.context),
                                  ("serviceAccountDirectory", self.serviceAccountDirectory)] where value != nil {
                throw fail(name, "only applies to type kubernetes")
            }
        }
        if self.kubeconfig != nil, self.isInCluster {
            throw fail("kubeconfig", "choose one of inCluster and kubeconfig")
        }
        if self.context != nil, self.kubeconfig == nil { throw fail("context", "needs kubeconfig") }
        if self.kubeconfig != nil, self.url == nil {
            // The kubeconfig names the server.
        } else if let url = self.url {
            try ConfigurationValidation.checkURL(url, field: "\(field).url", schemes: ["http", "https"])
            if self.caFile != nil, url.lowercased().hasPrefix("http:") {
                throw fail("caFile", "only applies to an https url")
            }
        } else if !self.isInCluster {
            throw fail(
                "url",
                self.type == "kubernetes"
                    ? "required unless inCluster is true or a kubeconfig is given" : "required (http or https)")
        }
        try self.credentials.validate(field: "\(field).credentials")
        if self.caFile?.isEmpty == true { throw fail("caFile", "must not be empty") }
        for key in self.annotations.keys.sorted() where !ConfigurationValidation.isAnnotationKey(key) {
            throw fail("annotations", "key \"\(key)\" must be letters, digits, '.', '_', '-', optionally prefix/")
        }
        guard (0...65_536).contains(self.maxIdleConnections) else {
            throw fail("maxIdleConnections", "\(self.maxIdleConnections) must be between 0 and 65536")
        }
    }

    /// The same definition with relative file paths resolved against `directory`.
    func resolvingPaths(relativeTo directory: String) -> ServiceDefinition {
        var copy = self
        copy.credentials = self.credentials.resolvingPaths(relativeTo: directory)
        copy.caFile = self.caFile.map { ConfigurationFile.resolve($0, relativeTo: directory) }
        copy.kubeconfig = self.kubeconfig.map { ConfigurationFile.resolve($0, relativeTo: directory) }
        copy.serviceAccountDirectory = self.serviceAccountDirectory.map {
            ConfigurationFile.resolve($0, relativeTo: directory)
        }
        return copy
    }
}
