import Foundation
import Synchronization
import Tunnel

/// Where a user request goes and on whose behalf.
struct Route: Sendable, Equatable {
    var agent: String
    var serviceType: String
    var serviceName: String
    /// The human or tool behind the request, for audit: certificate CN or token subject.
    var user: String

    var serviceKey: String { "\(self.serviceType)/\(self.serviceName)" }
}

/// A refusal the user can act on: an HTTP status and a reason.
struct Refusal: Error, Sendable, Equatable {
    var status: Int
    var reason: String
    /// Short label for metrics.
    var label: String
    /// The service type when it is known despite the refusal (an expired token still names its service), so the
    /// error can take that service's shape.
    var serviceType: String?
}

/// Decides who a service-listener request comes from and where it may go: a bearer service token first, else the
/// client certificate's endpoint identity.
struct Authenticator: Sendable {
    let trustDomain: String
    let tokenVerifier: Certificate
    /// Tokens already verified, so a client sending the same token on every request pays for ES256 once.
    let verifiedTokens = VerifiedTokenCache()
    static let tokenAudience = "porthole-service"

    func authenticate(authorization: String?, peerCertificate: Certificate?) -> Result<Route, Refusal> {
        if let authorization {
            let token: String
            switch AuthorizationHeader(authorization) {
            case .bearer(let bearer):
                token = bearer
            case .emptyBearer:
                return .failure(Refusal(status: 401, reason: "empty bearer token", label: "empty_token"))
            case .unsupported:
                return .failure(Refusal(status: 401, reason: "unsupported Authorization scheme: use Bearer <token>",
                                        label: "scheme"))
            }
            do {
                let claims: ServiceTokenClaims
                if let cached = self.verifiedTokens.claims(for: token) {
                    claims = cached
                } else {
                    claims = try ServiceToken.verify(token, certificate: self.tokenVerifier,
                                                     audience: Self.tokenAudience)
                    self.verifiedTokens.remember(token, claims: claims)
                }
                return .success(Route(agent: claims.agent, serviceType: claims.type, serviceName: claims.service,
                                      user: claims.sub))
            } catch let error as ServiceTokenError {
                // Past the signature check the claims are the CA's own: they say which service the user meant.
                let signed = error == .expired || error == .wrongAudience
                return .failure(Refusal(status: 401, reason: "invalid service token: \(error)", label: "token",
                                        serviceType: signed ? ServiceToken.unverifiedClaims(token)?.type : nil))
            } catch {
                return .failure(Refusal(status: 401, reason: "invalid service token", label: "token"))
            }
        }
        guard let certificate = peerCertificate else {
            return .failure(Refusal(status: 401,
                                    reason: "no credentials: present a client certificate or a bearer service token",
                                    label: "none"))
        }
        let user = certificate.commonName ?? "unknown"
        switch EndpointIdentity.from(certificate: certificate, trustDomain: self.trustDomain) {
        case .kubernetes(let agent, let service):
            return .success(Route(agent: agent, serviceType: "kubernetes", serviceName: service, user: user))
        case .service(let type, let agent, let service):
            return .success(Route(agent: agent, serviceType: type, serviceName: service, user: user))
        case .some(let identity):
            return .failure(Refusal(
                status: 403,
                reason: "a certificate for \(identity.kind) identity \(identity) may not be used on the service listener",
                label: "wrong_identity"))
        case .none:
            return .failure(Refusal(status: 403, reason: "the client certificate carries no Porthole identity",
                                    label: "no_identity"))
        }
    }
}

/// Service tokens that passed verification, until they expire. Bounded: when full, it starts over.
final class VerifiedTokenCache: Sendable {
    private let entries = Mutex<[String: ServiceTokenClaims]>([:])
    private static let capacity = 10_000

    /// The claims of `token` if it was verified before and has not expired since.
    func claims(for token: String, now: Date = Date()) -> ServiceTokenClaims? {
        self.entries.withLock { entries in
            guard let claims = entries[token] else { return nil }
            guard Double(claims.exp) > now.timeIntervalSince1970 else {
                entries[token] = nil
                return nil
            }
            return claims
        }
    }

    func remember(_ token: String, claims: ServiceTokenClaims) {
        self.entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = claims
        }
    }
}
