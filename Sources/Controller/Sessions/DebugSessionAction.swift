import Foundation

/// What the owner of a `DebugSessionStateMachine` must do after a transition, in order.
enum DebugSessionAction: Sendable, Equatable {
    /// Write this line to the audit log.
    case audit(DebugSessionAuditEvent)
    /// Save the session (store it before answering the caller; on a store conflict, reload and retry).
    case persist(DebugSession)
    /// Add the debug container: dry run, then the patch of `EphemeralContainerPatch`, then a `StartWatcher`
    /// until `session.startingUntil`; report `containerStarted` or `startFailed`.
    case startContainer(DebugSession)
    /// End the debug process in the container (`DebugProcessTermination`); the container itself stays.
    case endDebugProcess(DebugContainerReference)
    /// Cancel every attach and exec stream registered under the session, on this replica (`SessionRegistry`),
    /// and tell the other replicas (they see the state change in the store).
    case cutStreams(sessionID: String)
    /// Look at the session again at `at` (`handleTimer(now:)`); replaces an earlier timer of the session.
    case scheduleTimer(sessionID: String, at: Date)
    /// The session needs no timer any more.
    case cancelTimer(sessionID: String)
}

/// Who acts on a session, as the gateway verified them; `isAdmin` from `Policy.isAdmin`.
struct DebugSessionActor: Sendable, Equatable {
    var subject: PolicySubject
    /// In one of the policy's admin groups: approves and ends anyone's session.
    var isAdmin: Bool

    init(subject: PolicySubject, isAdmin: Bool = false) {
        self.subject = subject
        self.isAdmin = isAdmin
    }

    /// The controller itself: timers and the container watcher.
    static let porthole = DebugSessionActor(subject: PolicySubject(username: "porthole", groups: []))
}

/// What happened to a session, in history entries and audit lines.
enum DebugSessionEvent: String, Sendable, Equatable, Codable {
    case created
    case approved
    case rejected
    case started
    case failed
    case extended
    case renewalRequested
    case renewalRejected
    case terminated
    case expired
}

/// One audit line about a session: a JSON object in the audit file.
struct DebugSessionAuditEvent: Sendable, Equatable, Codable {
    var time: Date
    /// Always `session`, so audit readers can tell these lines from request decisions.
    var kind = "session"
    var event: DebugSessionEvent
    var sessionID: String
    /// Who caused it.
    var user: String
    var groups: [String]
    var owner: String
    var cluster: String
    var namespace: String
    var pod: String
    var container: String
    var image: String
    var profile: SecurityProfile
    var from: DebugSessionState?
    var to: DebugSessionState
    var reason: String
    /// The session's deadline after the event, when it has one.
    var deadline: Date?
}

/// Why a session operation was refused. `status` is the HTTP status the REST API answers with.
struct DebugSessionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of refusal.
    enum Kind: String, Sendable, Equatable {
        /// The request is malformed: a missing field, a bad name, a duration that is not a duration (400).
        case invalid
        /// The caller may not do this: no policy grant, not the owner, not an approver, self-approval (403).
        case forbidden
        /// The session is not in a state that allows it (409).
        case wrongState
        /// A limit of the binding: image, duration, renewals, profile, target container (422).
        case limit
    }

    var kind: Kind
    /// One sentence for the caller and the audit line.
    var reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// 400, 403, 409 or 422.
    var status: Int {
        switch self.kind {
        case .invalid: 400
        case .forbidden: 403
        case .wrongState: 409
        case .limit: 422
        }
    }

    var description: String { self.reason }
}
