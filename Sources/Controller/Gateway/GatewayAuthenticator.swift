import Foundation
import Synchronization
import Tunnel

/// Who a gateway request speaks for, as the controller verified it.
struct GatewayIdentity: Sendable, Equatable, Codable {
    var username: String
    var email: String?
    var groups: [String]
    /// The issuer that signed the token; `gateway-headers` for trusted-proxy headers.
    var issuer: String
    /// The trusted gateway the request came through, if it did.
    var gateway: String?

    /// The policy's view of the person.
    var subject: PolicySubject { PolicySubject(username: self.username, email: self.email, groups: self.groups) }

    /// The issuer name used for identities read from trusted-proxy headers.
    static let proxyHeadersIssuer = "gateway-headers"
}

/// What the gateway authentication stage found.
enum GatewayAuthentication: Sendable, Equatable {
    /// No gateway credential: Porthole's own authentication (service token, client certificate) decides.
    case notGateway
    /// A verified gateway identity.
    case identity(GatewayIdentity)
    /// A gateway credential that does not prove anything: refuse with this status, reason and metrics label.
    case refused(status: Int, reason: String, label: String)
}

/// The gateway authentication stage, sans I/O: finds the token (the configured headers in order; `authorization`
/// means `Bearer`), leaves Porthole service tokens to Porthole's authentication, verifies the token with the issuer
/// its unverified `iss` names, and in trusted-proxy mode reads the unsigned identity headers of a trusted gateway.
struct GatewayAuthenticator: Sendable {
    let configuration: GatewayConfiguration
    let trustDomain: String
    /// Verifies `token` for the configured issuer `issuer` (the verification, key fetches and cache of `IssuerKeys`).
    let verify: @Sendable (_ issuer: String, _ token: String) -> Result<VerifiedIdentity, TokenRefusal>
    /// Whether `verify` for a token of `issuer` naming `keyID` would wait for a key fetch now; by default always
    /// (every token request is then decided off the event loops).
    var verifyWouldWait: @Sendable (_ issuer: String, _ keyID: String?) -> Bool = { _, _ in true }

    init(configuration: GatewayConfiguration, trustDomain: String,
         verify: @escaping @Sendable (_ issuer: String, _ token: String) -> Result<VerifiedIdentity, TokenRefusal>) {
        self.configuration = configuration
        self.trustDomain = trustDomain
        self.verify = verify
    }

    /// The audience and issuer of Porthole's own service tokens.
    static let portholeAudience = "porthole-service"
    static let portholeIssuer = "porthole"

    func authenticate(headers: [HTTPField], peerCertificate: Certificate?) -> GatewayAuthentication {
        let gateway = self.trustedGateway(peerCertificate)
        switch self.token(in: headers) {
        case .portholeToken:
            return .notGateway
        case .ambiguous(let header):
            return .refused(status: 401, reason: "more than one \(header) header", label: "token_headers")
        case .found(let token):
            return self.verify(token, gateway: gateway)
        case .none:
            break
        }
        guard let gateway else { return .notGateway }
        if self.configuration.trustedProxyHeaders, let identity = Self.proxyIdentity(headers, gateway: gateway) {
            return .identity(identity)
        }
        return .refused(status: 401, reason: "the gateway \(gateway) sent no identity (no token in "
                            + "\(self.configuration.tokenHeaders.joined(separator: ", ")))", label: "no_identity")
    }

    /// Whether a request carries a gateway credential (an IdP token in a token header, or a trusted gateway's
    /// certificate), without verifying anything: such requests may wait for a key fetch or a decision endpoint, so
    /// the pipeline decides them off the event loops.
    func carriesGatewayCredential(headers: [HTTPField], peerCertificate: Certificate?) -> Bool {
        switch self.token(in: headers) {
        case .found, .ambiguous: return true
        case .portholeToken, .none: return self.trustedGateway(peerCertificate) != nil
        }
    }

    /// Whether authenticating this request may wait for an issuer's key fetch: it carries a token (not Porthole's)
    /// of a configured issuer whose keys are not ready for its kid. Tokens that fail to parse or name another issuer
    /// are refused without waiting; identities from trusted-proxy headers never wait.
    func mayWaitForKeys(headers: [HTTPField], peerCertificate: Certificate?) -> Bool {
        guard case .found(let token) = self.token(in: headers) else { return false }
        if self.configuration.requireGateway, self.trustedGateway(peerCertificate) == nil { return false }
        guard case .success(let parsed) = ParsedTokenMemo.shared.parse(token),
              let issuer = parsed.claims?["iss"]?.string,
              self.configuration.issuers.contains(where: { $0.issuer == issuer })
        else { return false }
        return self.verifyWouldWait(issuer, parsed.jws.keyID)
    }

    /// The trusted gateway name of the peer's `gateway/NAME` certificate, if trusted.
    func trustedGateway(_ certificate: Certificate?) -> String? {
        guard let certificate,
              case .gateway(let name)? = EndpointIdentity.from(certificate: certificate, trustDomain: self.trustDomain),
              self.configuration.trustedGateways.contains(name)
        else { return nil }
        return name
    }

    private enum TokenSearch: Equatable {
        case none
        case portholeToken
        case ambiguous(String)
        case found(String)
    }

    private func token(in headers: [HTTPField]) -> TokenSearch {
        for header in self.configuration.tokenHeaders {
            let values = headers.filter { $0.name == header }.map(\.value)
            guard !values.isEmpty else { continue }
            guard values.count == 1 else { return .ambiguous(header) }
            var value = Self.trimmingWhitespace(values[0])
            if header == "authorization" {
                guard case .bearer(let token) = AuthorizationHeader(value) else { continue }
                if Self.isPortholeToken(token) { return .portholeToken }
                value = token
            } else if value.lowercased().hasPrefix("bearer ") {
                value = String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            }
            guard !value.isEmpty else { continue }
            return .found(value)
        }
        return .none
    }

    /// `value.trimmingCharacters(in: .whitespaces)`, without Foundation when neither end can be whitespace (an ASCII
    /// byte other than space and tab): the usual header value, which it returns as is.
    static func trimmingWhitespace(_ value: String) -> String {
        func plain(_ byte: UInt8?) -> Bool { byte.map { $0 > 0x20 && $0 < 0x80 } ?? true }
        if plain(value.utf8.first), plain(value.utf8.last) { return value }
        return value.trimmingCharacters(in: .whitespaces)
    }

    /// Whether a bearer token is Porthole's own service token (by its unverified `aud` or `iss`), from the token's
    /// parse in `ParsedTokenMemo` (clients repeat their tokens; each is decoded once).
    static func isPortholeToken(_ token: String) -> Bool {
        guard case .success(let parsed) = ParsedTokenMemo.shared.parse(token) else { return false }
        return parsed.isPortholeToken
    }

    private func verify(_ token: String, gateway: String?) -> GatewayAuthentication {
        if self.configuration.requireGateway, gateway == nil {
            return .refused(status: 401, reason: "invalid token: tokens are accepted only through a trusted gateway",
                            label: "not_gateway")
        }
        let parsed: ParsedTokenMemo.Parsed
        switch ParsedTokenMemo.shared.parse(token) {
        case .success(let found): parsed = found
        case .failure(let error): return .refused(status: 401, reason: "invalid token: \(error)", label: error.label)
        }
        guard let issuer = parsed.claims?["iss"]?.string,
              self.configuration.issuers.contains(where: { $0.issuer == issuer })
        else {
            return .refused(status: 401, reason: "invalid token: issuer (iss) is not a configured issuer",
                            label: "wrong_iss")
        }
        switch self.verify(issuer, token) {
        case .success(let verified):
            let usernameClaim = self.configuration.issuers.first { $0.issuer == issuer }?.usernameClaim
            return .identity(GatewayIdentity(
                username: verified.username, email: usernameClaim == "email" ? verified.username : nil,
                groups: verified.groups, issuer: verified.issuer, gateway: gateway))
        case .failure(let refusal):
            return .refused(status: refusal == .noKeys ? 503 : 401, reason: "invalid token: \(refusal)",
                            label: refusal.label)
        }
    }

    /// The identity in trusted-proxy headers: `X-Forwarded-User` or `X-Auth-Request-User` (else `-Email`), groups
    /// from `X-Forwarded-Groups` and `X-Auth-Request-Groups`, comma-joined or repeated.
    static func proxyIdentity(_ headers: [HTTPField], gateway: String) -> GatewayIdentity? {
        func values(_ name: String) -> [String] {
            headers.filter { $0.name == name }.map { $0.value.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        let email = values("x-auth-request-email").first ?? values("x-forwarded-email").first
        guard let username = values("x-forwarded-user").first ?? values("x-auth-request-user").first ?? email else {
            return nil
        }
        var groups: [String] = []
        for value in values("x-forwarded-groups") + values("x-auth-request-groups") {
            for group in value.split(separator: ",") {
                let trimmed = group.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty, !groups.contains(trimmed) { groups.append(trimmed) }
            }
        }
        return GatewayIdentity(username: username, email: email, groups: groups, issuer: Self.proxyHeadersIssuerName,
                               gateway: gateway)
    }

    private static let proxyHeadersIssuerName = GatewayIdentity.proxyHeadersIssuer
}

/// Recently seen bearer tokens, parsed: a compact JWS and its unverified payload are a pure function of the token's
/// text, and clients repeat their tokens on every request, so the gateway decodes each token once instead of at
/// every step (Porthole-token recognition, issuer lookup, key lookup). At most `capacity` tokens of at most
/// `maximumTokenBytes` each (so at most 1 MiB of token text), forgotten all at once when full. Nothing here is
/// verified: signatures and claims are checked by `IssuerKeys` exactly as before.
final class ParsedTokenMemo: Sendable {
    struct Parsed: Sendable {
        let jws: JWS
        /// The payload's members, when it is a JSON object.
        let claims: [String: JSONValue]?
        /// Whether the unverified `iss` or `aud` says Porthole.
        let isPortholeToken: Bool
    }

    static let shared = ParsedTokenMemo()
    static let capacity = 256
    static let maximumTokenBytes = 4096
    private let entries = Mutex<[String: Parsed]>([:])

    /// The parsed token, or why it is not a compact JWS.
    func parse(_ token: String) -> Result<Parsed, TokenRefusal> {
        let cacheable = token.utf8.count <= Self.maximumTokenBytes
        if cacheable, let known = self.entries.withLock({ $0[token] }) { return .success(known) }
        let jws: JWS
        do {
            jws = try JWS(compact: token)
        } catch {
            return .failure(error)
        }
        let claims = JSONValue.parse(jws.payload)?.object
        let parsed = Parsed(jws: jws, claims: claims, isPortholeToken: Self.namesPorthole(claims))
        if cacheable {
            self.entries.withLock { entries in
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
                entries[token] = parsed
            }
        }
        return .success(parsed)
    }

    private static func namesPorthole(_ claims: [String: JSONValue]?) -> Bool {
        guard let claims else { return false }
        if claims["iss"]?.string == GatewayAuthenticator.portholeIssuer { return true }
        switch claims["aud"] {
        case .string(let audience)?: return audience == GatewayAuthenticator.portholeAudience
        case .array(let audiences)?: return audiences.contains(.string(GatewayAuthenticator.portholeAudience))
        default: return false
        }
    }
}
