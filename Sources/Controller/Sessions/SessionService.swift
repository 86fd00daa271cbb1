import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The debug sessions as they run on one controller replica: the REST API's calls, the store (the journal), the
/// timers, the container patch and start watch, and the end of the debug process, all through the tunnel.
///
/// Calls (`handle`) run on a worker thread and may wait, bounded, for the cluster; the registry's lock is never
/// held across I/O. Kubernetes requests go to the agent's `kubernetes/<kubernetesService>` service with the agent's
/// own credentials (no impersonation).
final class SessionService: Sendable {
    let registry: SessionRegistry
    let journal: JournalSessionStore
    /// The Kubernetes service of each agent the sessions use.
    let kubernetesService: String
    /// How long a create (or an approval) waits for the container to run before answering `Starting`.
    let startWaitSeconds: Double
    private let agents: any SessionDirectory
    let auditLog: @Sendable () -> AuditLog?
    private let timer: SessionTimer
    private let workers = DispatchQueue(label: "porthole.sessions.work", qos: .userInitiated, attributes: .concurrent)
    private let tunnelQueue = DispatchQueue(label: "porthole.sessions.tunnel")
    private let persistLock = Mutex(())

    /// The base path of the API.
    static let basePath = "/api/gateway/v1/sessions"
    /// The largest request body.
    static let maximumBodyBytes = 64 * 1024

    init(journalPath: String, agents: any SessionDirectory, kubernetesService: String = "default",
         startWaitSeconds: Double = 20, audit: @escaping @Sendable () -> AuditLog?) throws(SessionStoreError) {
        self.journal = try JournalSessionStore(path: journalPath)
        self.agents = agents
        self.kubernetesService = kubernetesService
        self.startWaitSeconds = startWaitSeconds
        self.auditLog = audit
        let timer = SessionTimer()
        self.timer = timer
        self.registry = SessionRegistry(onNextTimerChange: { timer.arm(at: $0) })
        timer.onFire = { [weak self] in
            guard let self else { return }
            self.perform(self.registry.fireDueTimers())
            // A timer that fired a little early left the earliest moment unchanged: arm it again.
            self.timer.arm(at: self.registry.nextTimer)
        }
        let stored = self.journal.sessions.values.sorted { $0.createdAt < $1.createdAt }
        for session in stored { self.registry.load(session) }
        for session in stored where session.state == .starting {
            self.workers.async { self.startContainer(session) }
        }
        Log.info("debug sessions restored", [
            "journal": journalPath, "sessions": "\(stored.count)",
            "open": "\(stored.filter { !$0.state.isFinal }.count)", "skippedLines": "\(self.journal.skippedLines)",
        ])
    }

    // MARK: - Carrying out actions

    /// Carries out what the registry left to its owner: audit lines, saves, the container, the debug process.
    func perform(_ actions: [DebugSessionAction]) {
        for action in actions {
            switch action {
            case .audit(let event):
                self.auditLog()?.write(line: DebugSessionCoding.encode(event))
            case .persist(let session):
                do {
                    try self.persist(session)
                } catch {
                    Log.error("saving a debug session failed", ["session": session.id, "error": "\(error)"])
                }
            case .startContainer(let session):
                self.workers.async { self.startContainer(session) }
            case .endDebugProcess(let container):
                self.workers.async { self.endDebugProcess(container) }
            case .cutStreams, .scheduleTimer, .cancelTimer:
                break
            }
        }
    }

    /// Saves `session` unless the journal already holds a later state of it (transitions may finish saving out of
    /// order); the registry is this replica's truth, the journal follows it.
    private func persist(_ session: DebugSession) throws {
        try self.persistLock.withLock { _ in
            let stored = self.journal.sessions[session.id]
            if let stored, stored.history.count > session.history.count { return }
            var copy = session
            copy.storeVersion = stored?.storeVersion
            _ = try self.journal.save(copy)
        }
    }

    // MARK: - Kubernetes through the tunnel

    /// Sends one request to the cluster's Kubernetes service and waits for the whole answer (at most `timeout`).
    func kubernetes(_ cluster: String, _ method: String, _ path: String, body: [UInt8]? = nil,
                    contentType: String? = nil, timeout: Double = 10) -> Result<KubernetesResponse, SessionStoreError> {
        let headers = [HTTPField("accept", "application/json")]
            + (contentType.map { [HTTPField("content-type", $0)] } ?? [])
        let result = Mutex<Result<KubernetesResponse, SessionStoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let agents = self.agents
        let service = self.kubernetesService
        let queue = self.tunnelQueue
        queue.async {
            TunnelClient.collect({ handler in
                let client = TunnelClient.open(
                    agent: cluster, serviceType: "kubernetes", serviceName: service, method: method, path: path,
                    headers: headers, hasBody: body != nil, user: "controller:sessions", sessions: agents,
                    queue: queue, handler: handler)
                if let body, let client {
                    client.send(body)
                    client.end()
                }
                return client
            }, limit: 4 << 20, timeout: timeout, queue: queue) { outcome in
                let mapped: Result<KubernetesResponse, SessionStoreError> = switch outcome {
                case .success(let response): .success(KubernetesResponse(status: response.status, body: response.body))
                case .failure(let error):
                    .failure(SessionStoreError(.unavailable, "cluster \(cluster) cannot be reached: \(error)"))
                }
                result.withLock { $0 = mapped }
                done.signal()
            }
        }
        guard done.wait(timeout: .now() + timeout + 1) == .success else {
            return .failure(SessionStoreError(.unavailable, "cluster \(cluster) did not answer within \(timeout) s"))
        }
        return result.withLock { $0 }!
    }

    // MARK: - The container

    /// Adds the session's debug container (dry run first, then the patch bound to the pod's UID) unless the pod
    /// already has it (a restart resumes the wait), then polls the pod until the container runs, fails, or the
    /// session's start deadline passes.
    func startContainer(_ session: DebugSession) {
        let podPath = "/api/v1/namespaces/\(session.namespace)/pods/\(session.pod)"
        var alreadyAdded = false
        if case .success(let response) = self.kubernetes(session.cluster, "GET", podPath), response.status == 200,
           let pod = PodSnapshot.parse(response.body), pod.uid == session.podUID,
           pod.ephemeralContainers.contains(session.containerName) {
            alreadyAdded = true
        }
        if !alreadyAdded {
            for dryRun in [true, false] {
                let patch = EphemeralContainerPatch.make(for: session, dryRun: dryRun)
                let outcome = self.kubernetes(session.cluster, patch.method, patch.path, body: patch.body,
                                              contentType: patch.contentType)
                var failure: String?
                switch outcome {
                case .success(let response) where (200..<300).contains(response.status):
                    break
                case .success(let response):
                    failure = KubernetesStatus.failureReason(status: response.status, body: response.body)
                case .failure(let error):
                    failure = "the debug container could not be added: \(error.reason)"
                }
                self.auditPatch(session, dryRun: dryRun, failure: failure)
                if let failure {
                    self.finishStart(session.id) { $0.startFailed(reason: failure, now: Date()) }
                    return
                }
            }
        }
        var watcher = StartWatcher(session: session,
                                   deadline: session.startingUntil ?? Date() + Double(DebugSessionStateMachine.startTimeoutSeconds))
        while true {
            let verdict: StartWatcher.Verdict
            switch self.kubernetes(session.cluster, "GET", podPath, timeout: 5) {
            case .success(let response) where response.status == 200:
                verdict = watcher.observe(PodSnapshot.parse(response.body), now: Date())
            case .success(let response) where response.status == 404:
                verdict = watcher.observe(nil, now: Date())
            default:
                verdict = watcher.check(now: Date())
            }
            switch verdict {
            case .started(let at):
                self.finishStart(session.id) { $0.containerStarted(at: at) }
                return
            case .failed(let reason):
                self.finishStart(session.id) { $0.startFailed(reason: reason, now: Date()) }
                return
            case .waiting:
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

    private func finishStart(_ id: String, _ body: (inout DebugSessionStateMachine) -> [DebugSessionAction]) {
        do {
            self.perform(try self.registry.transition(id: id) { machine in body(&machine) })
        } catch {
            Log.warning("debug session vanished while its container started", ["session": id])
        }
    }

    /// Ends the debug process: `kill -HUP 1` exec'd in the debug container when it has its own process namespace
    /// (the debug command is PID 1 there; a shell exits on SIGHUP). With a target container PID 1 is the target's
    /// and is left alone: the debug process stays, idle, and no one reaches it through Porthole again.
    func endDebugProcess(_ container: DebugContainerReference) {
        let sessionID = String(container.container.dropFirst(DebugSession.containerPrefix.count))
        if container.targetContainer != nil {
            self.auditProcessEnd(container, sessionID: sessionID, outcome: "not signalled: the container shares "
                + "\(container.targetContainer!)'s process namespace, whose PID 1 is not the debug process")
            return
        }
        let outcome = self.execKillHUP(container)
        self.auditProcessEnd(container, sessionID: sessionID, outcome: outcome)
    }

    /// The exec of `kill -HUP 1` (WebSocket, `v5.channel.k8s.io`), retried for up to 30 s while the agent is not
    /// connected (after a restart); returns what happened, for the audit line.
    private func execKillHUP(_ container: DebugContainerReference) -> String {
        let path = "/api/v1/namespaces/\(container.namespace)/pods/\(container.pod)/exec?container="
            + "\(container.container)&command=kill&command=-HUP&command=1&stdout=true&stderr=true"
        let started = Date()
        while true {
            if let session = self.agents.routableSession(of: container.cluster),
               session.offers(type: "kubernetes", name: self.kubernetesService) {
                return self.exec(on: session, path: path)
            }
            if Date().timeIntervalSince(started) > 30 { return "agent \(container.cluster) is not connected" }
            Thread.sleep(forTimeInterval: 1)
        }
    }

    private func exec(on session: any RoutableSession, path: String) -> String {
        let fields = [
            HTTPField(":method", "GET"), HTTPField(":scheme", "https"), HTTPField(":authority", "porthole"),
            HTTPField(":path", path), HTTPField("sec-websocket-key", TunnelRequestHead.webSocketKey()),
            HTTPField("sec-websocket-version", "13"),
            HTTPField("sec-websocket-protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
            HTTPField(TunnelProtocol.upgradeHeader, "websocket"),
            HTTPField(TunnelProtocol.serviceHeader, "kubernetes/\(self.kubernetesService)"),
            HTTPField(TunnelProtocol.requestIDHeader, RandomID.request()),
            HTTPField(TunnelProtocol.userHeader, "controller:sessions"),
        ]
        struct Progress { var status = 0; var bytes: [UInt8] = []; var finished = false }
        let progress = Mutex(Progress())
        let done = DispatchSemaphore(value: 0)
        let queue = self.tunnelQueue
        let client = Mutex<TunnelClient?>(nil)
        queue.sync {
            client.withLock {
                $0 = TunnelClient.open(on: session, headers: fields, hasBody: true, queue: queue) { client, event in
                    switch event {
                    case .response(let status, _):
                        progress.withLock { $0.status = status }
                        if status != 101 { done.signal() }
                    case .data(let bytes):
                        client.consume(bytes.count)
                        progress.withLock { $0.bytes += bytes.prefix(4096 - min(4096, $0.bytes.count)) }
                    case .end, .closed:
                        progress.withLock { $0.finished = true }
                        done.signal()
                    }
                }
            }
        }
        let answered = done.wait(timeout: .now() + 10) == .success
        queue.async { client.withLock { $0?.cancel() } }
        let seen = progress.withLock { $0 }
        guard answered else { return "the exec of kill -HUP 1 did not finish within 10 s" }
        guard seen.status == 101 else { return "the exec of kill -HUP 1 was refused with HTTP \(seen.status)" }
        let text = String(decoding: seen.bytes, as: UTF8.self)
        if text.contains("\"Success\"") { return "kill -HUP 1 sent" }
        return "the exec of kill -HUP 1 ended without success"
    }

    private struct ContainerAudit: Encodable {
        var time: Date
        var kind = "session"
        var event: String
        var sessionID: String
        var cluster: String
        var namespace: String
        var pod: String
        var podUID: String
        var container: String
        var image: String?
        var profile: SecurityProfile?
        var dryRun: Bool?
        var result: String
    }

    private func auditPatch(_ session: DebugSession, dryRun: Bool, failure: String?) {
        self.auditLog()?.write(line: DebugSessionCoding.encode(ContainerAudit(
            time: Date(), event: "containerPatch", sessionID: session.id, cluster: session.cluster,
            namespace: session.namespace, pod: session.pod, podUID: session.podUID, container: session.containerName,
            image: session.image, profile: session.profile, dryRun: dryRun, result: failure ?? "accepted")))
    }

    private func auditProcessEnd(_ container: DebugContainerReference, sessionID: String, outcome: String) {
        Log.info("debug process end", ["session": sessionID, "container": container.container, "outcome": outcome])
        self.auditLog()?.write(line: DebugSessionCoding.encode(ContainerAudit(
            time: Date(), event: "debugProcessEnd", sessionID: sessionID, cluster: container.cluster,
            namespace: container.namespace, pod: container.pod, podUID: container.podUID,
            container: container.container, result: outcome)))
    }

    /// Waits (at most `startWaitSeconds`) for a session to leave `Starting`.
    func waitWhileStarting(_ id: String) -> DebugSession? {
        let deadline = Date() + self.startWaitSeconds
        while let session = self.registry.session(id: id), session.state == .starting, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        return self.registry.session(id: id)
    }
}

/// One timer for the registry's earliest moment.
final class SessionTimer: @unchecked Sendable {
    private let queue = DispatchQueue(label: "porthole.sessions.timer")
    private let lock = NSLock()
    private var source: (any DispatchSourceTimer)?
    /// Called on the timer's queue when the timer fires; set once, before the first `arm`.
    var onFire: (@Sendable () -> Void)?

    func arm(at date: Date?) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.source?.cancel()
        self.source = nil
        guard let date else { return }
        let source = DispatchSource.makeTimerSource(queue: self.queue)
        let delay = max(0, date.timeIntervalSinceNow)
        source.schedule(deadline: .now() + delay, leeway: .milliseconds(10))
        source.setEventHandler { [weak self] in self?.onFire?() }
        source.resume()
        self.source = source
    }
}
