import Foundation
import Tunnel

/// One person's time-limited right to one debug container in one pod: what was asked, by whom, under which
/// limits, and every state it went through.
///
/// A value: `DebugSessionStateMachine` changes it and says what to do about each change; stores persist it as
/// `session.json` (see `DebugSessionCoding`). Only `Active` before the deadline grants access (`isActive(at:)`).
struct DebugSession: Sendable, Equatable, Codable {
    /// Short random identifier, 10 lowercase hex digits; also the suffix of the container name.
    var id: String
    /// The agent name.
    var cluster: String
    var namespace: String
    var pod: String
    /// The pod's `metadata.uid` when the session was asked for: the container patch is bound to it.
    var podUID: String
    /// The image, as the request wrote it (and the allow-list admitted it).
    var image: String
    /// The container whose process namespace the debug container shares, if any.
    var targetContainer: String?
    /// The debug container's command; nil runs the image's entrypoint.
    var command: [String]?
    /// `porthole-<id>`.
    var containerName: String
    /// Who asked; the only one who may attach.
    var owner: PolicySubject
    /// Why, as the owner wrote it.
    var reason: String
    /// The securityContext profile the container gets.
    var profile: SecurityProfile
    /// How long the session lasts once the container runs.
    var durationSeconds: Int
    /// The binding's limits when the session was asked for; renewals and approvals follow them.
    var limits: DebugLimits
    /// The label of the binding that allowed it (`payments-oncall`, `bindings[2]`), or `admin`.
    var binding: String
    var createdAt: Date
    /// While `PendingApproval`: when the request expires unapproved.
    var pendingUntil: Date?
    /// While `Starting`: when the controller gives up waiting for the container.
    var startingUntil: Date?
    /// When the container was seen running.
    var startedAt: Date?
    /// When access ends; set once `Active`, moved by extensions.
    var deadline: Date?
    /// How many extensions were granted.
    var renewals: Int
    /// An extension waiting for an approver.
    var pendingRenewal: DebugSessionRenewal?
    /// The current state (the last entry of `history`).
    var state: DebugSessionState
    /// Every change of state and every extension, oldest first.
    var history: [DebugSessionStateChange]
    /// The store's version of this session (a ConfigMap's `resourceVersion`) for optimistic concurrency; not part
    /// of `session.json`.
    var storeVersion: String?

    enum CodingKeys: String, CodingKey {
        case id, cluster, namespace, pod, podUID, image, targetContainer, command, containerName, owner, reason
        case profile, durationSeconds, limits, binding, createdAt, pendingUntil, startingUntil, startedAt, deadline
        case renewals, pendingRenewal, state, history
    }

    /// The prefix of every debug container Porthole adds; no one attaches to one outside its session.
    static let containerPrefix = "porthole-"

    /// A fresh identifier: 5 random bytes as hex (a container name stays short, collisions stay unlikely).
    static func makeID() -> String { RandomID.make(bytes: 5) }

    /// Whether the session grants access at `now`: `Active` and before the deadline, even if no timer fired yet.
    func isActive(at now: Date) -> Bool {
        guard self.state == .active, let deadline = self.deadline else { return false }
        return now < deadline
    }

    /// Seconds of access left at `now` (0 when not active), for the UI's countdown and warnings.
    func remainingSeconds(at now: Date) -> Int {
        guard self.isActive(at: now), let deadline = self.deadline else { return 0 }
        return Int(deadline.timeIntervalSince(now).rounded(.up))
    }

    /// The next moment a timer must look at this session: pending expiry, start timeout, renewal expiry or the
    /// deadline; nil in a final state.
    var nextTimer: Date? {
        switch self.state {
        case .pendingApproval: self.pendingUntil
        case .starting: self.startingUntil
        case .active: [self.deadline, self.pendingRenewal?.pendingUntil].compactMap { $0 }.min()
        case .expired, .terminated, .rejected, .failed: nil
        }
    }

    /// Whether `subject` is the owner, by username or by email (case-insensitive).
    func isOwned(by subject: PolicySubject) -> Bool {
        if subject.username == self.owner.username { return true }
        let emails = [self.owner.email, self.owner.username].compactMap { $0?.lowercased() }.filter { $0.contains("@") }
        let theirs = [subject.email, subject.username].compactMap { $0?.lowercased() }.filter { $0.contains("@") }
        return theirs.contains(where: emails.contains)
    }

    /// Whether `subject` is in one of the approver groups of the session's limits.
    func isApprover(_ subject: PolicySubject) -> Bool {
        self.limits.approval.approverGroups.contains(where: subject.groups.contains)
    }

    /// The debug container this session owns.
    var container: DebugContainerReference {
        DebugContainerReference(
            cluster: self.cluster, namespace: self.namespace, pod: self.pod, podUID: self.podUID,
            container: self.containerName, targetContainer: self.targetContainer)
    }
}

/// The states of a debug session.
enum DebugSessionState: String, Sendable, Equatable, Codable, CaseIterable {
    /// Waiting for an approver; no container yet.
    case pendingApproval = "PendingApproval"
    /// Allowed; the container is being added and the controller waits for it to run.
    case starting = "Starting"
    /// The container runs; the owner may attach until the deadline.
    case active = "Active"
    /// The deadline passed.
    case expired = "Expired"
    /// Ended by its owner, an approver or an admin.
    case terminated = "Terminated"
    /// An approver refused it, or it expired while pending.
    case rejected = "Rejected"
    /// The container could not be added or did not run.
    case failed = "Failed"

    /// Whether no transition leaves this state.
    var isFinal: Bool {
        switch self {
        case .pendingApproval, .starting, .active: false
        case .expired, .terminated, .rejected, .failed: true
        }
    }
}

/// One entry of a session's history: a change of state, or an event within a state (an extension).
struct DebugSessionStateChange: Sendable, Equatable, Codable {
    /// What happened: `created`, `approved`, `started`, `extended`, `terminated`, …
    var event: DebugSessionEvent
    /// The state after the event.
    var state: DebugSessionState
    var at: Date
    /// Username of who did it; `porthole` for the controller itself (timers, the container watcher).
    var by: String
    /// Why: the owner's or approver's reason, or the controller's (`expired while pending`, `ErrImagePull: …`).
    var reason: String
}

/// An extension waiting for an approver.
struct DebugSessionRenewal: Sendable, Equatable, Codable {
    /// How much later the deadline moves once approved.
    var seconds: Int
    var requestedBy: String
    var requestedAt: Date
    var reason: String
    /// When the request lapses unapproved (never after the session's deadline).
    var pendingUntil: Date
}

/// Where a session's debug container is.
struct DebugContainerReference: Sendable, Equatable, Hashable {
    var cluster: String
    var namespace: String
    var pod: String
    var podUID: String
    var container: String
    /// Set when the container shares the target's process namespace.
    var targetContainer: String?
}
