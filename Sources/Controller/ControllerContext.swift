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
        self.instanceID = configuration.instanceID
            ?? "\(ProcessInfo.processInfo.hostName)-\(RandomID.make(bytes: 3))"
        let files = ControllerCredentials.files(of: configuration)
        self.state = Mutex((try ControllerCredentials(configuration: configuration), FileFingerprint.of(files)))
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
