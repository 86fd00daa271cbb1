import Foundation

/// The life of one debug session, without I/O: each method checks who may do what in which state, changes the
/// session, and returns the actions its owner carries out in order (audit, persist, start the container, cut
/// streams, end the debug process, timers).
///
///     create ─┬─ approval required ─> PendingApproval ─┬─ approve ─> Starting
///             │                                        ├─ reject, pending expiry ─> Rejected
///             │                                        └─ terminate (withdraw) ─> Terminated
///             └──────────────────────────────────────────────────────> Starting ─┬─ container runs ─> Active
///                                                                                ├─ start failed, timeout ─> Failed
///                                                                                └─ terminate ─> Terminated
///     Active ─┬─ extend (now, or after an approver approves the renewal) ─> Active with a later deadline
///             ├─ deadline ─> Expired
///             └─ terminate ─> Terminated
///
/// A deadline always wins: `DebugSession.isActive(at:)` is false from the deadline on even before `handleTimer`
/// runs, and a `terminate` after the deadline records the session as `Expired`.
struct DebugSessionStateMachine: Sendable, Equatable {
    /// The session as it is now.
    private(set) var session: DebugSession

    /// How long the controller waits for a new debug container to run.
    static let startTimeoutSeconds = 120

    /// Resumes a stored session.
    init(session: DebugSession) {
        self.session = session
    }

    /// A new session from a validated request: `PendingApproval` when the binding demands approval, else
    /// `Starting` with the container to add.
    static func create(
        _ request: ValidatedDebugSessionRequest, owner: PolicySubject, podUID: String,
        id: String = DebugSession.makeID(), now: Date
    ) -> (DebugSessionStateMachine, [DebugSessionAction]) {
        let needsApproval = request.limits.approval.required
        let state: DebugSessionState = needsApproval ? .pendingApproval : .starting
        let session = DebugSession(
            id: id, cluster: request.cluster, namespace: request.namespace, pod: request.pod, podUID: podUID,
            image: request.image, targetContainer: request.targetContainer, command: request.command,
            containerName: DebugSession.containerPrefix + id, owner: owner, reason: request.reason,
            profile: request.profile, durationSeconds: request.durationSeconds, limits: request.limits,
            binding: request.binding, createdAt: now,
            pendingUntil: needsApproval ? now + TimeInterval(request.limits.approval.pendingExpirySeconds) : nil,
            startingUntil: needsApproval ? nil : now + TimeInterval(Self.startTimeoutSeconds),
            startedAt: nil, deadline: nil, renewals: 0, pendingRenewal: nil, state: state,
            history: [DebugSessionStateChange(
                event: .created, state: state, at: now, by: owner.username, reason: request.reason)],
            storeVersion: nil)
        let machine = DebugSessionStateMachine(session: session)
        let audit = machine.auditEvent(
            .created, from: nil, by: DebugSessionActor(subject: owner), reason: request.reason, now: now)
        if needsApproval {
            return (machine, [.audit(audit), .persist(session),
                              .scheduleTimer(sessionID: id, at: session.pendingUntil!)])
        }
        return (machine, [.audit(audit), .persist(session), .startContainer(session),
                          .scheduleTimer(sessionID: id, at: session.startingUntil!)])
    }

    // MARK: - Approval

    /// An approver (or admin) approves the pending session, or its pending extension. Never its owner (by
    /// username or email); a reason is required.
    mutating func approve(by actor: DebugSessionActor, reason: String, now: Date)
        throws(DebugSessionError) -> [DebugSessionAction]
    {
        let reason = try Self.requiredReason(reason, for: "an approval")
        try self.checkApprover(actor, verb: "approve")
        guard !self.session.isOwned(by: actor.subject) else {
            throw DebugSessionError(.forbidden, "no one approves their own session")
        }
        switch self.session.state {
        case .pendingApproval:
            guard let until = self.session.pendingUntil, now < until else {
                throw DebugSessionError(.wrongState, "the request expired while pending")
            }
            self.session.pendingUntil = nil
            self.session.startingUntil = now + TimeInterval(Self.startTimeoutSeconds)
            let audit = self.move(to: .starting, event: .approved, by: actor, reason: reason, now: now)
            return [.audit(audit), .persist(self.session), .startContainer(self.session),
                    .scheduleTimer(sessionID: self.session.id, at: self.session.startingUntil!)]
        case .active where self.session.pendingRenewal != nil:
            let renewal = self.session.pendingRenewal!
            guard self.session.isActive(at: now), now < renewal.pendingUntil else {
                throw DebugSessionError(.wrongState, "the extension expired while pending")
            }
            self.session.pendingRenewal = nil
            self.session.deadline = self.session.deadline! + TimeInterval(renewal.seconds)
            self.session.renewals += 1
            let audit = self.move(
                to: .active, event: .extended, by: actor,
                reason: "\(reason) (extension by \(DebugDuration.text(renewal.seconds)) asked by "
                    + "\(renewal.requestedBy): \(renewal.reason))", now: now)
            return [.audit(audit), .persist(self.session), self.timerAction()]
        default:
            throw DebugSessionError(
                .wrongState, "session is \(self.session.state.rawValue); only a pending session or a pending "
                    + "extension is approved")
        }
    }

    /// An approver (or admin) rejects the pending session, or its pending extension; a reason is required.
    mutating func reject(by actor: DebugSessionActor, reason: String, now: Date)
        throws(DebugSessionError) -> [DebugSessionAction]
    {
        let reason = try Self.requiredReason(reason, for: "a rejection")
        try self.checkApprover(actor, verb: "reject")
        switch self.session.state {
        case .pendingApproval:
            self.session.pendingUntil = nil
            let audit = self.move(to: .rejected, event: .rejected, by: actor, reason: reason, now: now)
            return [.audit(audit), .persist(self.session), .cancelTimer(sessionID: self.session.id)]
        case .active where self.session.pendingRenewal != nil:
            self.session.pendingRenewal = nil
            let audit = self.move(to: .active, event: .renewalRejected, by: actor, reason: reason, now: now)
            return [.audit(audit), .persist(self.session), self.timerAction()]
        default:
            throw DebugSessionError(
                .wrongState, "session is \(self.session.state.rawValue); only a pending session or a pending "
                    + "extension is rejected")
        }
    }

    // MARK: - The container

    /// The container was seen running at `time`: `Starting → Active` with the deadline `time + duration`. A
    /// container that runs after its session ended (terminated or timed out while starting) has its process ended.
    mutating func containerStarted(at time: Date) -> [DebugSessionAction] {
        switch self.session.state {
        case .starting:
            self.session.startingUntil = nil
            self.session.startedAt = time
            self.session.deadline = time + TimeInterval(self.session.durationSeconds)
            let audit = self.move(
                to: .active, event: .started, by: .porthole,
                reason: "container \(self.session.containerName) is running", now: time)
            return [.audit(audit), .persist(self.session), self.timerAction()]
        case .terminated, .expired, .failed:
            return [.endDebugProcess(self.session.container)]
        case .pendingApproval, .active, .rejected:
            return []
        }
    }

    /// The container could not be added or did not run: `Starting → Failed` with the real reason
    /// (`ErrImagePull: …`, the admission message). Ignored in any other state.
    mutating func startFailed(reason: String, now: Date) -> [DebugSessionAction] {
        guard self.session.state == .starting else { return [] }
        self.session.startingUntil = nil
        let audit = self.move(to: .failed, event: .failed, by: .porthole, reason: reason, now: now)
        return [.audit(audit), .persist(self.session), .cancelTimer(sessionID: self.session.id)]
    }

    // MARK: - Extension and termination

    /// The owner (or an admin) extends the active session by `seconds` (the binding's default duration when nil),
    /// at most `maxRenewals` times, and never to more than `maxDurationSeconds` remaining. When renewals need
    /// approval the extension waits for an approver (`approve`) and the deadline stays until then.
    mutating func extend(by seconds: Int?, actor: DebugSessionActor, reason: String?, now: Date)
        throws(DebugSessionError) -> [DebugSessionAction]
    {
        let limits = self.session.limits
        guard self.session.isOwned(by: actor.subject) || actor.isAdmin else {
            throw DebugSessionError(.forbidden, "only the session's owner or an admin extends it")
        }
        guard self.session.isActive(at: now), let deadline = self.session.deadline else {
            let state = self.session.state == .active ? "past its deadline" : self.session.state.rawValue
            throw DebugSessionError(.wrongState, "session is \(state); only an active session is extended")
        }
        guard self.session.pendingRenewal == nil else {
            throw DebugSessionError(.wrongState, "an extension is already waiting for approval")
        }
        guard self.session.renewals < limits.maxRenewals else {
            throw DebugSessionError(
                .limit, "session was already extended \(self.session.renewals) times, the most the policy allows")
        }
        let seconds = seconds ?? limits.defaultDurationSeconds
        guard seconds > 0 else { throw DebugSessionError(.invalid, "an extension must be positive, got \(seconds)s") }
        let remaining = Int(deadline.timeIntervalSince(now).rounded(.up))
        guard remaining + seconds <= limits.maxDurationSeconds else {
            let most = max(0, limits.maxDurationSeconds - remaining)
            throw DebugSessionError(
                .limit, "extending by \(DebugDuration.text(seconds)) would leave "
                    + "\(DebugDuration.text(remaining + seconds)), more than the maximum "
                    + "\(DebugDuration.text(limits.maxDurationSeconds)); extend by at most \(DebugDuration.text(most))")
        }
        if limits.renewalNeedsApproval {
            let reason = try Self.requiredReason(reason ?? "", for: "an extension that needs approval")
            let until = min(deadline, now + TimeInterval(limits.approval.pendingExpirySeconds))
            self.session.pendingRenewal = DebugSessionRenewal(
                seconds: seconds, requestedBy: actor.subject.username, requestedAt: now, reason: reason,
                pendingUntil: until)
            let audit = self.move(
                to: .active, event: .renewalRequested, by: actor,
                reason: "\(reason) (extension by \(DebugDuration.text(seconds)) waits for approval)", now: now)
            return [.audit(audit), .persist(self.session), self.timerAction()]
        }
        self.session.deadline = deadline + TimeInterval(seconds)
        self.session.renewals += 1
        let text = reason.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
        let audit = self.move(
            to: .active, event: .extended, by: actor,
            reason: (text.map { $0 + " " } ?? "") + "(extended by \(DebugDuration.text(seconds)))", now: now)
        return [.audit(audit), .persist(self.session), self.timerAction()]
    }

    /// The owner, an approver or an admin ends the session: streams are cut, the debug process is ended. A
    /// pending request is withdrawn. After the deadline the session is recorded as `Expired` instead.
    mutating func terminate(by actor: DebugSessionActor, reason: String?, now: Date)
        throws(DebugSessionError) -> [DebugSessionAction]
    {
        guard self.session.isOwned(by: actor.subject) || actor.isAdmin || self.session.isApprover(actor.subject)
        else { throw DebugSessionError(.forbidden, "only the session's owner, an approver or an admin ends it") }
        let trimmed = reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let reason = trimmed.isEmpty ? "ended by \(actor.subject.username)" : trimmed
        let id = self.session.id
        switch self.session.state {
        case .pendingApproval:
            self.session.pendingUntil = nil
            let audit = self.move(to: .terminated, event: .terminated, by: actor, reason: reason, now: now)
            return [.audit(audit), .persist(self.session), .cancelTimer(sessionID: id)]
        case .starting:
            self.session.startingUntil = nil
            let audit = self.move(to: .terminated, event: .terminated, by: actor, reason: reason, now: now)
            return [.cutStreams(sessionID: id), .audit(audit), .persist(self.session), .cancelTimer(sessionID: id),
                    .endDebugProcess(self.session.container)]
        case .active where !self.session.isActive(at: now):
            return self.handleTimer(now: now)
        case .active:
            self.session.pendingRenewal = nil
            let audit = self.move(to: .terminated, event: .terminated, by: actor, reason: reason, now: now)
            return [.cutStreams(sessionID: id), .audit(audit), .persist(self.session), .cancelTimer(sessionID: id),
                    .endDebugProcess(self.session.container)]
        case .expired, .terminated, .rejected, .failed:
            throw DebugSessionError(.wrongState, "session is already \(self.session.state.rawValue)")
        }
    }

    // MARK: - Time

    /// What is due at `now`: a pending request expires (`Rejected`, "expired while pending"), a container that
    /// did not start in time fails, a pending extension lapses, an active session past its deadline expires.
    /// Otherwise the timer is set again for the next moment (a timer that fired early, or a moved deadline).
    mutating func handleTimer(now: Date) -> [DebugSessionAction] {
        let id = self.session.id
        switch self.session.state {
        case .pendingApproval where now >= (self.session.pendingUntil ?? now):
            self.session.pendingUntil = nil
            let audit = self.move(to: .rejected, event: .rejected, by: .porthole, reason: "expired while pending",
                                  now: now)
            return [.audit(audit), .persist(self.session), .cancelTimer(sessionID: id)]
        case .starting where now >= (self.session.startingUntil ?? now):
            self.session.startingUntil = nil
            let audit = self.move(
                to: .failed, event: .failed, by: .porthole,
                reason: "the debug container did not start within \(DebugDuration.text(Self.startTimeoutSeconds))",
                now: now)
            return [.audit(audit), .persist(self.session), .cancelTimer(sessionID: id),
                    .endDebugProcess(self.session.container)]
        case .active where now >= (self.session.deadline ?? now):
            self.session.pendingRenewal = nil
            let audit = self.move(to: .expired, event: .expired, by: .porthole, reason: "deadline reached", now: now)
            return [.cutStreams(sessionID: id), .audit(audit), .persist(self.session), .cancelTimer(sessionID: id),
                    .endDebugProcess(self.session.container)]
        case .active where self.session.pendingRenewal.map { now >= $0.pendingUntil } ?? false:
            self.session.pendingRenewal = nil
            let audit = self.move(
                to: .active, event: .renewalRejected, by: .porthole, reason: "extension expired while pending",
                now: now)
            return [.audit(audit), .persist(self.session), self.timerAction()]
        default:
            return self.session.nextTimer.map { [.scheduleTimer(sessionID: id, at: $0)] } ?? []
        }
    }

    // MARK: - Helpers

    /// An audit line about the session as it is now.
    func auditEvent(_ event: DebugSessionEvent, from: DebugSessionState?, by actor: DebugSessionActor,
                    reason: String, now: Date) -> DebugSessionAuditEvent {
        DebugSessionAuditEvent(
            time: now, event: event, sessionID: self.session.id, user: actor.subject.username,
            groups: actor.subject.groups, owner: self.session.owner.username, cluster: self.session.cluster,
            namespace: self.session.namespace, pod: self.session.pod, container: self.session.containerName,
            image: self.session.image, profile: self.session.profile, from: from, to: self.session.state,
            reason: reason, deadline: self.session.deadline)
    }

    /// Records `event` in the history, moves to `state` and returns the audit line.
    private mutating func move(to state: DebugSessionState, event: DebugSessionEvent, by actor: DebugSessionActor,
                               reason: String, now: Date) -> DebugSessionAuditEvent {
        let previous = self.session.state
        self.session.state = state
        self.session.history.append(
            DebugSessionStateChange(event: event, state: state, at: now, by: actor.subject.username, reason: reason))
        return self.auditEvent(event, from: previous, by: actor, reason: reason, now: now)
    }

    /// The timer for the session's next moment, or none.
    private func timerAction() -> DebugSessionAction {
        if let next = self.session.nextTimer { return .scheduleTimer(sessionID: self.session.id, at: next) }
        return .cancelTimer(sessionID: self.session.id)
    }

    private func checkApprover(_ actor: DebugSessionActor, verb: String) throws(DebugSessionError) {
        guard actor.isAdmin || self.session.isApprover(actor.subject) else {
            let groups = self.session.limits.approval.approverGroups
            let who = groups.isEmpty ? "admins" : "admins and groups [\(groups.joined(separator: ", "))]"
            throw DebugSessionError(.forbidden, "only \(who) \(verb) this session")
        }
    }

    private static func requiredReason(_ text: String, for what: String) throws(DebugSessionError) -> String {
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw DebugSessionError(.invalid, "\(what) needs a reason") }
        guard reason.count <= DebugSessionRequest.maxReasonLength else {
            throw DebugSessionError(
                .invalid, "the reason is longer than \(DebugSessionRequest.maxReasonLength) characters")
        }
        return reason
    }
}
