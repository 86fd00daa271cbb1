import Dispatch
import Foundation
import Synchronization
import Tunnel

/// What every controller connection shares: configuration, credentials, registry and metrics.
final class ControllerContext: Sendable {
    let configuration: ControllerConfiguration
    let instanceID: String
    let serviceURL: String
    let registry = AgentRegistry()
    /// The replica count told to agents in the hello.
    let replicas: ReplicaAnnouncement
    let metrics: ControllerMetrics
    /// Cancellations per user: what one user's resets and hang-ups may cost the tunnels shared with others.
    let cancellationBudget: CancellationBudget
    /// The decision point of the request pipeline.
    let authorizer: any RequestAuthorizer
    /// Routes the controller serves itself on the service listener.
    let localRoutes: LocalRoutes
    /// Identities from the company's gateway and IdP (`--gateway-config`); nil when off.
    let gateway: Gateway?
    /// The audit trail: the gateway's, or `--audit-log` alone.
    let audit: AuditLog?
    /// The debug sessions (`--sessions-journal`); nil when off.
    let sessions: SessionService?
    private let state: Mutex<(credentials: ControllerCredentials, fingerprint: String)>

    init(configuration: ControllerConfiguration, metrics: ControllerMetrics, serviceURL: String) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.serviceURL = serviceURL
        self.replicas = ReplicaAnnouncement(configuration: configuration)
        self.cancellationBudget = CancellationBudget(
            buckets: KeyedTokenBuckets(burst: configuration.userCancellationBurst,
                                       perSecond: configuration.userCancellationsPerSecond),
            metrics: metrics)
        self.instanceID = configuration.makeInstanceID()
        if let path = configuration.gatewayConfigFile {
            let gateway = try Gateway(path: path, trustDomain: configuration.trustDomain,
                                      auditLogOverride: configuration.auditLog)
            self.gateway = gateway
            self.audit = gateway.audit
        } else {
            self.gateway = nil
            self.audit = try configuration.auditLog.map { path throws(PolicyError) in try AuditLog(path: path) }
        }
        let journal = configuration.sessionsJournal
            ?? ProcessInfo.processInfo.environment["STATE_DIRECTORY"].map { $0 + "/sessions.journal" }
        if let gateway = self.gateway, let journal {
            self.sessions = try SessionService(journalPath: journal, agents: self.registry,
                                               audit: { [weak gateway] in gateway?.audit })
        } else {
            self.sessions = nil
        }
        let audit = self.audit
        self.authorizer = CredentialScopeAuthorizer(audit: audit.map { log in
            { @Sendable request, route, decision in
                log.write(AuditRecord(
                    requestID: request.requestID, user: route.user, source: request.peerHost ?? "",
                    cluster: route.agent, service: route.serviceKey, verb: request.method.lowercased(),
                    decision: decision.isAllowed ? "allow" : "deny", reason: decision.reason))
            }
        })
        self.localRoutes = LocalRoutes([WellKnownRoute.route(serviceURL: serviceURL, instance: self.instanceID)])
        let files = ControllerCredentials.files(of: configuration)
        self.state = Mutex((try ControllerCredentials(configuration: configuration), FileFingerprint.of(files)))
    }

    /// The chain every user request passes, with the credentials in force now.
    var pipeline: RequestPipeline {
        let authenticator = self.authenticator
        return RequestPipeline(
            authenticate: { authenticator.authenticate(authorization: $0, peerCertificate: $1) },
            budget: self.cancellationBudget, authorizer: self.authorizer, sessions: self.registry,
            localRoutes: self.localRoutes, gateway: self.gateway.map { gateway in
                var stage = gateway.stage
                stage.sessions = self.sessions
                return stage
            })
    }

    /// Logs a refused request once and counts it: before routing as an auth failure by label, after as a finished
    /// request with its status.
    func record(_ refusal: RequestRefusal, requestID: String, peer: String, started: DispatchTime) {
        var fields = ["peer": peer, "request": requestID, "status": "\(refusal.error.status)",
                      "reason": refusal.error.message]
        if let route = refusal.route {
            fields["agent"] = route.agent
            fields["service"] = route.serviceKey
            fields["user"] = route.user
            self.metrics.requestFinished(agent: route.agent, serviceType: route.serviceType,
                                         code: refusal.error.status, seconds: started.secondsElapsed)
        }
        if let label = refusal.failureLabel { self.metrics.authFailure(reason: label) }
        Log.warning(refusal.logMessage, fields)
    }

    /// The credentials new connections use.
    var credentials: ControllerCredentials { self.state.withLock { $0.credentials } }
    var authenticator: Authenticator { self.credentials.authenticator }

    /// Reloads the CA and server certificate when their files changed; true when replaced.
    func reloadCredentialsIfChanged() -> Bool {
        let fingerprint = FileFingerprint.of(ControllerCredentials.files(of: self.configuration))
        let current = self.state.withLock { $0 }
        guard fingerprint != current.fingerprint || current.credentials.needsRenewal else { return false }
        do {
            let credentials = try ControllerCredentials(configuration: self.configuration)
            self.state.withLock { $0 = (credentials, fingerprint) }
            Log.info("controller credentials reloaded",
                     ["serverCertificateNotAfter": "\(credentials.serverCertificateNotAfter)"])
            return true
        } catch {
            // Files mid-rotation (new certificate beside the old key) fail to load: try again on the next check.
            Log.warning("reloading the controller credentials failed; keeping the old ones", ["error": "\(error)"])
            return false
        }
    }
}
