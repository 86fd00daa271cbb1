import Foundation
import Tunnel

/// The gateway configuration file (`--gateway-config`): which `gateway/NAME` certificates are trusted, which
/// headers carry tokens, the issuers whose tokens are verified, the policy file and the audit log. Every field is
/// documented in docs/gateway.md, "Configuration".
struct GatewayConfiguration: Sendable, Equatable, Decodable {
    /// The default token headers, in the order they are tried.
    static let defaultTokenHeaders = [
        "x-pomerium-jwt-assertion", "authorization", "x-id-token", "x-forwarded-id-token", "x-forwarded-access-token",
    ]

    /// Names of `spiffe://TRUST/gateway/NAME` client certificates trusted as gateways.
    var trustedGateways: [String] = []
    /// Tokens are accepted only on connections whose client certificate is a trusted gateway's.
    var requireGateway = false
    /// Unsigned identity headers (`X-Forwarded-User`, `X-Auth-Request-*`) count, from trusted gateways only.
    var trustedProxyHeaders = false
    /// Lowercased header names that carry tokens, in order; `authorization` means `Bearer`.
    var tokenHeaders = Self.defaultTokenHeaders
    /// The identity providers whose tokens are verified.
    var issuers: [Issuer] = []
    /// The policy file; nil denies every Kubernetes request of a gateway identity.
    var policyFile: String?
    /// The audit destination: a file, or `-` for standard output; nil writes no audit lines.
    var auditLog: String?

    /// One identity provider.
    struct Issuer: Sendable, Equatable, Decodable {
        /// `iss`, exact.
        var issuer: String
        /// Find the JWK Set URL through `ISSUER/.well-known/openid-configuration`.
        var discovery: Bool
        /// The JWK Set URL (https, or http on loopback).
        var jwksURL: String?
        /// A JWK Set file, re-read when it changes.
        var jwksFile: String?
        /// CA bundle (PEM) for the issuer's HTTPS endpoints; nil uses the system's roots.
        var caFile: String?
        var audiences: [String]
        var acceptAuthorizedParty = false
        var algorithms: [String] = JWSAlgorithm.allCases.map(\.rawValue)
        var usernameClaim = "email"
        /// Nil reads no groups.
        var groupsClaim: String? = "groups"
        var groupPrefix = ""
        var leewaySeconds: Double = 60
        var refreshSeconds: Double = 300
        var minRefetchSeconds: Double = 30

        enum CodingKeys: String, CodingKey, CaseIterable {
            case issuer, discovery, jwksURL, jwksFile, caFile, audiences, acceptAuthorizedParty, algorithms
            case usernameClaim, groupsClaim, groupPrefix, leewaySeconds, refreshSeconds, minRefetchSeconds
        }

        init(issuer: String, discovery: Bool = true, jwksURL: String? = nil, jwksFile: String? = nil,
             audiences: [String]) {
            self.issuer = issuer
            self.discovery = discovery
            self.jwksURL = jwksURL
            self.jwksFile = jwksFile
            self.audiences = audiences
        }

        init(from decoder: any Decoder) throws {
            try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func read<Value: Decodable>(_ key: CodingKeys, into value: inout Value) throws {
                if let decoded = try container.decodeIfPresent(Value.self, forKey: key) { value = decoded }
            }
            self.issuer = try container.decode(String.self, forKey: .issuer)
            self.jwksURL = try container.decodeIfPresent(String.self, forKey: .jwksURL)
            self.jwksFile = try container.decodeIfPresent(String.self, forKey: .jwksFile)
            self.discovery = try container.decodeIfPresent(Bool.self, forKey: .discovery)
                ?? (self.jwksURL == nil && self.jwksFile == nil)
            self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
            self.audiences = try container.decode([String].self, forKey: .audiences)
            try read(.acceptAuthorizedParty, into: &self.acceptAuthorizedParty)
            try read(.algorithms, into: &self.algorithms)
            try read(.usernameClaim, into: &self.usernameClaim)
            if container.contains(.groupsClaim) {
                self.groupsClaim = try container.decodeIfPresent(String.self, forKey: .groupsClaim)
            }
            try read(.groupPrefix, into: &self.groupPrefix)
            try read(.leewaySeconds, into: &self.leewaySeconds)
            try read(.refreshSeconds, into: &self.refreshSeconds)
            try read(.minRefetchSeconds, into: &self.minRefetchSeconds)
        }

        /// The verifier's rules; valid after `validate`.
        var verifierConfiguration: TokenVerifier.Configuration {
            TokenVerifier.Configuration(
                issuer: self.issuer, audiences: self.audiences, acceptsAuthorizedParty: self.acceptAuthorizedParty,
                algorithms: Set(self.algorithms.compactMap(JWSAlgorithm.init(rawValue:))), leeway: self.leewaySeconds,
                usernameClaim: self.usernameClaim, groupsClaim: self.groupsClaim, groupPrefix: self.groupPrefix)
        }

        /// The key fetch schedule.
        var cacheConfiguration: JWKSCache.Configuration {
            JWKSCache.Configuration(refreshInterval: self.refreshSeconds,
                                    minimumRefetchInterval: self.minRefetchSeconds)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case trustedGateways, requireGateway, trustedProxyHeaders, tokenHeaders, issuers, policyFile, auditLog
    }

    init() {}

    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func read<Value: Decodable>(_ key: CodingKeys, into value: inout Value) throws {
            if let decoded = try container.decodeIfPresent(Value.self, forKey: key) { value = decoded }
        }
        try read(.trustedGateways, into: &self.trustedGateways)
        try read(.requireGateway, into: &self.requireGateway)
        try read(.trustedProxyHeaders, into: &self.trustedProxyHeaders)
        try read(.tokenHeaders, into: &self.tokenHeaders)
        try read(.issuers, into: &self.issuers)
        self.policyFile = try container.decodeIfPresent(String.self, forKey: .policyFile)
        self.auditLog = try container.decodeIfPresent(String.self, forKey: .auditLog)
    }

    /// Checks every field; the error names the field.
    func validate() throws(PolicyFile.Invalid) {
        func fail(_ field: String, _ reason: String) -> PolicyFile.Invalid { .init(field: field, reason: reason) }
        for (index, name) in self.trustedGateways.enumerated() where !EndpointIdentity.isValidComponent(name) {
            throw fail("trustedGateways[\(index)]", "\"\(name)\" must be letters, digits, '.', '_' or '-'")
        }
        if self.requireGateway, self.trustedGateways.isEmpty {
            throw fail("requireGateway", "true needs at least one name in trustedGateways")
        }
        if self.trustedProxyHeaders, self.trustedGateways.isEmpty {
            throw fail("trustedProxyHeaders", "true needs at least one name in trustedGateways")
        }
        for (index, header) in self.tokenHeaders.enumerated() {
            guard !header.isEmpty, header.allSatisfy({ $0 == "-" || $0.isASCII && ($0.isLowercase || $0.isNumber) })
            else {
                throw fail("tokenHeaders[\(index)]", "\"\(header)\" must be a lowercase header name")
            }
            guard HeaderRules.kind(of: header) != .endToEnd else {
                throw fail("tokenHeaders[\(index)]",
                           "\"\(header)\" would be forwarded to the cluster; use a credential header (authorization, "
                               + "x-id-token, x-forwarded-*-token) or an identity header (x-pomerium-*, x-auth-request-*)")
            }
        }
        guard Set(self.tokenHeaders).count == self.tokenHeaders.count else {
            throw fail("tokenHeaders", "a header is listed twice")
        }
        var seen: Set<String> = []
        for (index, issuer) in self.issuers.enumerated() {
            try issuer.validate(field: "issuers[\(index)]")
            guard seen.insert(issuer.issuer).inserted else {
                throw fail("issuers[\(index)].issuer", "\"\(issuer.issuer)\" is configured twice")
            }
        }
        if let policyFile, policyFile.isEmpty { throw fail("policyFile", "must not be empty") }
        if let auditLog, auditLog.isEmpty { throw fail("auditLog", "must not be empty (use \"-\" for stdout)") }
    }

    /// Relative paths are relative to the configuration file's directory.
    mutating func resolvePaths(relativeTo directory: String) {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || path == "-" ? path
                : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
        }
        self.policyFile = self.policyFile.map(resolve)
        self.auditLog = self.auditLog.map(resolve)
        for index in self.issuers.indices {
            self.issuers[index].caFile = self.issuers[index].caFile.map(resolve)
            self.issuers[index].jwksFile = self.issuers[index].jwksFile.map(resolve)
        }
    }
}

extension GatewayConfiguration.Issuer {
    func validate(field: String) throws(PolicyFile.Invalid) {
        func fail(_ name: String, _ reason: String) -> PolicyFile.Invalid {
            .init(field: "\(field).\(name)", reason: reason)
        }
        guard let url = URLComponents(string: self.issuer), url.scheme == "https" || url.scheme == "http",
              url.host?.isEmpty == false else {
            throw fail("issuer", "\"\(self.issuer)\" must be an https URL, written exactly as the tokens' iss")
        }
        let sources = [self.discovery, self.jwksURL != nil, self.jwksFile != nil].filter { $0 }.count
        guard sources == 1 else {
            throw fail("discovery", "give exactly one key source: discovery: true, jwksURL or jwksFile")
        }
        if self.discovery, url.scheme != "https", !Self.isLoopback(url.host ?? "") {
            throw fail("issuer", "discovery needs an https issuer (http only on loopback)")
        }
        if let jwksURL {
            guard let parsed = HTTPClientURL(jwksURL), parsed.isSecure || Self.isLoopback(parsed.host) else {
                throw fail("jwksURL", "\"\(jwksURL)\" must be an https URL (http only on loopback)")
            }
        }
        if let jwksFile, jwksFile.isEmpty { throw fail("jwksFile", "must not be empty") }
        if let caFile, caFile.isEmpty { throw fail("caFile", "must not be empty") }
        guard !self.audiences.isEmpty, self.audiences.allSatisfy({ !$0.isEmpty }) else {
            throw fail("audiences", "list at least one non-empty audience (the gateway's client id, or our hostname)")
        }
        guard !self.algorithms.isEmpty else { throw fail("algorithms", "list at least one of RS256, ES256, EdDSA") }
        for (index, name) in self.algorithms.enumerated() where JWSAlgorithm(rawValue: name) == nil {
            throw fail("algorithms[\(index)]", "\"\(name)\" is not one of RS256, ES256, EdDSA (HMAC and none never are)")
        }
        guard !self.usernameClaim.isEmpty else { throw fail("usernameClaim", "must not be empty") }
        if let groupsClaim = self.groupsClaim, groupsClaim.isEmpty { throw fail("groupsClaim", "must not be empty") }
        guard self.leewaySeconds.isFinite, (0...600).contains(self.leewaySeconds) else {
            throw fail("leewaySeconds", "must be from 0 to 600")
        }
        guard self.refreshSeconds.isFinite, (10...86_400).contains(self.refreshSeconds) else {
            throw fail("refreshSeconds", "must be from 10 to 86400")
        }
        guard self.minRefetchSeconds.isFinite, (1...self.refreshSeconds).contains(self.minRefetchSeconds) else {
            throw fail("minRefetchSeconds", "must be from 1 to refreshSeconds")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Reading the gateway configuration file, with errors in the policy file's form: `FILE:LINE:COL: FIELD: reason`.
enum GatewayConfigurationFile {
    static func load(path: String) throws(PolicyError) -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(path: path, field: nil, location: nil, reason: "cannot read the file")
        }
        var configuration = try Self.decode(data, path: path)
        configuration.resolvePaths(relativeTo: (path as NSString).deletingLastPathComponent.isEmpty
            ? FileManager.default.currentDirectoryPath : (path as NSString).deletingLastPathComponent)
        return configuration
    }

    static func decode(_ data: Data, path: String) throws(PolicyError) -> GatewayConfiguration {
        let map: JSONSourceMap
        do {
            map = try JSONSourceMap(text: String(decoding: data, as: UTF8.self))
        } catch {
            throw PolicyError(path: path, field: nil, location: error.location, reason: "not JSON: \(error.reason)")
        }
        func located(_ field: String, _ reason: String) -> PolicyError {
            PolicyError(path: path, field: field, location: map.location(of: field), reason: reason)
        }
        let configuration: GatewayConfiguration
        do {
            configuration = try JSONDecoder().decode(GatewayConfiguration.self, from: data)
        } catch let error as DecodingError {
            let (field, reason) = PolicyFile.describe(error)
            throw located(field, reason)
        } catch {
            throw PolicyError(path: path, field: nil, location: nil, reason: "\(error)")
        }
        do {
            try configuration.validate()
        } catch {
            throw located(error.field, error.reason)
        }
        return configuration
    }
}
