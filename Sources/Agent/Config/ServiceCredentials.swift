import Tunnel

/// How the agent authenticates to one backend service: at most one of a bearer token file, basic-auth files or
/// a client certificate; `{}` means none.
///
/// Credentials are file paths, re-read by the agent, so rotated secrets (projected tokens, mounted Secrets) need
/// no restart.
package struct ServiceCredentials: Codable, Sendable, Equatable {
    /// Username and password, each read from its own file.
    package struct BasicAuth: Codable, Sendable, Equatable {
        /// File holding the username (trailing newline ignored).
        package var usernameFile: String
        /// File holding the password (trailing newline ignored).
        package var passwordFile: String

        /// Both files.
        package init(usernameFile: String, passwordFile: String) {
            self.usernameFile = usernameFile
            self.passwordFile = passwordFile
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case usernameFile, passwordFile }

        /// Decodes `{"usernameFile","passwordFile"}`; unknown fields are an error.
        package init(from decoder: any Decoder) throws {
            try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.usernameFile = try container.decode(String.self, forKey: .usernameFile)
            self.passwordFile = try container.decode(String.self, forKey: .passwordFile)
        }
    }

    /// A PEM client certificate and key presented to the backend.
    package struct ClientCertificate: Codable, Sendable, Equatable {
        /// PEM certificate (chain) file.
        package var certFile: String
        /// PEM private key file.
        package var keyFile: String

        /// Both files.
        package init(certFile: String, keyFile: String) {
            self.certFile = certFile
            self.keyFile = keyFile
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case certFile, keyFile }

        /// Decodes `{"certFile","keyFile"}`; unknown fields are an error.
        package init(from decoder: any Decoder) throws {
            try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.certFile = try container.decode(String.self, forKey: .certFile)
            self.keyFile = try container.decode(String.self, forKey: .keyFile)
        }
    }

    /// The one credential in use, for the code that applies it.
    package enum Kind: Sendable, Equatable {
        /// No credentials of the agent's own are added.
        case none
        /// `Authorization: Bearer <file contents>`.
        case bearerToken(file: String)
        /// `Authorization: Basic <base64(username:password)>`.
        case basicAuth(BasicAuth)
        /// TLS client authentication to the backend.
        case clientCertificate(ClientCertificate)
    }

    /// File holding a bearer token (trailing newline ignored).
    package var bearerTokenFile: String?
    /// Username and password files.
    package var basicAuth: BasicAuth?
    /// Client certificate and key files.
    package var clientCertificate: ClientCertificate?

    /// No credentials.
    package static let none = ServiceCredentials()

    /// Any combination; `validate(field:)` rejects more than one.
    package init(
        bearerTokenFile: String? = nil, basicAuth: BasicAuth? = nil, clientCertificate: ClientCertificate? = nil
    ) {
        self.bearerTokenFile = bearerTokenFile
        self.basicAuth = basicAuth
        self.clientCertificate = clientCertificate
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case bearerTokenFile, basicAuth, clientCertificate }

    /// Decodes the credentials object; unknown fields are an error.
    package init(from decoder: any Decoder) throws {
        try ConfigurationFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.bearerTokenFile = try container.decodeIfPresent(String.self, forKey: .bearerTokenFile)
        self.basicAuth = try container.decodeIfPresent(BasicAuth.self, forKey: .basicAuth)
        self.clientCertificate = try container.decodeIfPresent(ClientCertificate.self, forKey: .clientCertificate)
    }

    /// The credential in use; `.none` if none is set. Meaningful after `validate(field:)`.
    package var kind: Kind {
        if let file = self.bearerTokenFile { return .bearerToken(file: file) }
        if let basicAuth = self.basicAuth { return .basicAuth(basicAuth) }
        if let clientCertificate = self.clientCertificate { return .clientCertificate(clientCertificate) }
        return .none
    }

    /// Checks at most one credential is set and every path is non-empty; `field` prefixes error fields.
    package func validate(field: String) throws {
        let set = [
            self.bearerTokenFile.map { _ in "bearerTokenFile" }, self.basicAuth.map { _ in "basicAuth" },
            self.clientCertificate.map { _ in "clientCertificate" },
        ].compactMap { $0 }
        guard set.count <= 1 else {
            throw ConfigurationError.invalid(
                field: field,
                reason: "set at most one of bearerTokenFile, basicAuth, clientCertificate; found "
                    + set.joined(separator: " and "))
        }
        let paths: [(String, String?)] = [
            ("bearerTokenFile", self.bearerTokenFile), ("basicAuth.usernameFile", self.basicAuth?.usernameFile),
            ("basicAuth.passwordFile", self.basicAuth?.passwordFile),
            ("clientCertificate.certFile", self.clientCertificate?.certFile),
            ("clientCertificate.keyFile", self.clientCertificate?.keyFile),
        ]
        for (name, path) in paths where path?.isEmpty == true {
            throw ConfigurationError.invalid(field: "\(field).\(name)", reason: "must not be empty")
        }
    }

    /// The same credentials with relative paths resolved against `directory`.
    func resolvingPaths(relativeTo directory: String) -> ServiceCredentials {
        func resolve(_ path: String) -> String { ConfigurationFile.resolve(path, relativeTo: directory) }
        var copy = self
        copy.bearerTokenFile = self.bearerTokenFile.map(resolve)
        copy.basicAuth = self.basicAuth.map {
            BasicAuth(usernameFile: resolve($0.usernameFile), passwordFile: resolve($0.passwordFile))
        }
        copy.clientCertificate = self.clientCertificate.map {
            ClientCertificate(certFile: resolve($0.certFile), keyFile: resolve($0.keyFile))
        }
        return copy
    }
}
