import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The gateway as it runs: its configuration file (re-read when it changes; a bad file keeps the last good
/// configuration), one `IssuerKeys` per issuer, the policy (its own `PolicyStore`), the audit log and the HTTP client
/// for the external decision. `stage` is the pipeline stage with what is in force now.
final class Gateway: Sendable {
    /// The configuration file.
    let path: String
    let trustDomain: String
    /// `--audit-log`, which overrides the file's `auditLog`.
    let auditLogOverride: String?

    private struct Loaded {
        var configuration: GatewayConfiguration
        var fingerprint: String
        var issuers: [String: IssuerKeys]
        var policy: PolicyStore?
        var audit: AuditLog?
        var external: HTTPExternalDecision?
    }

    private let loaded: Mutex<Loaded>
    /// Namespace labels read through the tunnels, shared by every decision.
    let namespaceLabels = NamespaceLabels()
    private let timer: Mutex<(any DispatchSourceTimer)?> = Mutex(nil)

    /// Loads everything once; throws when the configuration, the policy or the audit log cannot be used, since there
    /// is nothing good to keep.
    init(path: String, trustDomain: String, auditLogOverride: String?) throws {
        self.path = path
        self.trustDomain = trustDomain
        self.auditLogOverride = auditLogOverride
        let fingerprint = FileFingerprint.of([path])
        let configuration = try GatewayConfigurationFile.load(path: path)
        self.loaded = Mutex(try Self.build(configuration, fingerprint: fingerprint, previous: nil,
                                           auditLogOverride: auditLogOverride))
        Log.info("gateway configured", [
            "path": path, "issuers": "\(configuration.issuers.count)",
            "trustedGateways": configuration.trustedGateways.joined(separator: ","),
            "requireGateway": "\(configuration.requireGateway)", "policy": configuration.policyFile ?? "none",
        ])
    }

    deinit {
        self.timer.withLock { $0?.cancel() }
        self.loaded.withLock { loaded in loaded.issuers.values.forEach { $0.stop() } }
    }

    private static func build(_ configuration: GatewayConfiguration, fingerprint: String, previous: Loaded?,
                              auditLogOverride: String?) throws -> Loaded {
        var issuers: [String: IssuerKeys] = [:]
        var started: [IssuerKeys] = []
        for issuer in configuration.issuers {
            if let kept = previous?.issuers[issuer.issuer], kept.configuration == issuer {
                issuers[issuer.issuer] = kept
                continue
            }
            let source: any KeySetSource
            if let file = issuer.jwksFile {
                source = FileKeySetSource(path: file)
            } else {
                source = HTTPKeySetSource(issuer: issuer.issuer, jwksURL: issuer.jwksURL,
                                          client: try HTTPClient(trustedCAFile: issuer.caFile))
            }
            let keys = IssuerKeys(configuration: issuer, source: source)
            issuers[issuer.issuer] = keys
            started.append(keys)
        }
        var policy: PolicyStore?
        if let file = configuration.policyFile {
            if let kept = previous?.policy, kept.path == file {
                policy = kept
            } else {
                let store = try PolicyStore(path: file)
                store.checkPeriodically(every: 2)
                policy = store
            }
        }
        var audit: AuditLog?
        if let destination = auditLogOverride ?? configuration.auditLog {
            audit = previous?.audit?.path == destination ? previous?.audit : try AuditLog(path: destination)
        }
        let external = try previous?.external ?? HTTPExternalDecision(client: HTTPClient(trustedCAFile: nil))
        // Start fetching only once the whole configuration is known to be usable.
        for keys in started { keys.start() }
        for (name, keys) in previous?.issuers ?? [:] where issuers[name] !== keys { keys.stop() }
        return Loaded(configuration: configuration, fingerprint: fingerprint, issuers: issuers, policy: policy,
                      audit: audit, external: external)
    }

    /// The pipeline stage with the configuration, keys and policy in force.
    var stage: GatewayStage {
        let loaded = self.loaded.withLock { $0 }
        let issuers = loaded.issuers
        var authenticator = GatewayAuthenticator(configuration: loaded.configuration, trustDomain: self.trustDomain) {
            issuer, token in
            guard let keys = issuers[issuer] else { return .failure(.wrongIssuer) }
            return keys.verify(token)
        }
        authenticator.verifyWouldWait = { issuer, keyID in issuers[issuer]?.wouldWait(keyID: keyID) ?? false }
        return GatewayStage(authenticator: authenticator, policy: loaded.policy?.policy, audit: loaded.audit,
                            external: loaded.external, namespaceLabels: self.namespaceLabels)
    }

    /// The audit log in force, if any.
    var audit: AuditLog? { self.loaded.withLock { $0.audit } }

    /// Re-reads the configuration file when its fingerprint changed.
    func reloadIfChanged() {
        let fingerprint = FileFingerprint.of([self.path])
        let previous = self.loaded.withLock { $0 }
        guard fingerprint != previous.fingerprint else { return }
        do {
            let configuration = try GatewayConfigurationFile.load(path: self.path)
            let next = try Self.build(configuration, fingerprint: fingerprint, previous: previous,
                                      auditLogOverride: self.auditLogOverride)
            self.loaded.withLock { $0 = next }
            Log.info("gateway configuration reloaded", ["path": self.path, "issuers": "\(configuration.issuers.count)"])
        } catch {
            self.loaded.withLock { $0.fingerprint = fingerprint }
            Log.warning("gateway configuration refused, keeping the last good one",
                        ["path": self.path, "error": "\(error)"])
        }
    }

    /// Checks the configuration file every `interval` seconds.
    func checkPeriodically(every interval: Double) {
        self.timer.withLock { current in
            current?.cancel()
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "porthole.gateway.config"))
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
            timer.setEventHandler { [weak self] in self?.reloadIfChanged() }
            timer.resume()
            current = timer
        }
    }

    /// Reopens the audit log (SIGHUP).
    func reopenAuditLog() {
        self.audit?.reopen()
    }
}
