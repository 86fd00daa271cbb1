import Foundation
import Synchronization

/// The sessions one controller replica knows, their timers, and the attach and exec streams open under each, so
/// that expiry or termination cuts every stream of a session at once.
///
/// Transitions run under one lock (`transition(id:_:)`, `fireDueTimers()`); the registry keeps the session,
/// re-arms its timer and cancels its streams itself, and returns only the actions left to its owner: `audit`,
/// `persist`, `startContainer`, `endDebugProcess`. The clock is injected; the owner arms one timer for
/// `nextTimer` (told through `onNextTimerChange`) and calls `fireDueTimers()` when it fires.
final class SessionRegistry: Sendable {
    /// A registered stream, to unregister when it ends.
    struct StreamToken: Sendable, Hashable {
        var sessionID: String
        var number: Int
    }

    /// Whether a stream to a container may open.
    enum AccessVerdict: Sendable, Equatable {
        /// Not a Porthole debug container: the policy alone decides.
        case notDebugContainer
        /// The caller owns this active session.
        case allowed(sessionID: String)
        /// A Porthole debug container the caller may not reach now.
        case denied(reason: String)
    }

    private struct Stream {
        var cancel: @Sendable () -> Void
    }

    private struct State {
        var sessions: [String: DebugSession] = [:]
        var timers: [String: Date] = [:]
        var streams: [String: [Int: Stream]] = [:]
        var nextStreamNumber = 0
        var nextTimer: Date?
    }

    private let clock: @Sendable () -> Date
    private let onNextTimerChange: @Sendable (Date?) -> Void
    private let state = Mutex(State())

    /// A registry reading time from `clock`; `onNextTimerChange` hears the earliest timer whenever it changes
    /// (outside the lock; nil when no timer is left).
    init(clock: @escaping @Sendable () -> Date = { Date() },
         onNextTimerChange: @escaping @Sendable (Date?) -> Void = { _ in }) {
        self.clock = clock
        self.onNextTimerChange = onNextTimerChange
    }

    // MARK: - Sessions

    /// The session `id`, if known.
    func session(id: String) -> DebugSession? {
        self.state.withLock { $0.sessions[id] }
    }

    /// Every known session, newest first.
    func allSessions() -> [DebugSession] {
        self.state.withLock { $0.sessions.values.sorted { $0.createdAt > $1.createdAt } }
    }

    /// The earliest timer, if any.
    var nextTimer: Date? {
        self.state.withLock { $0.nextTimer }
    }

    /// Takes `session` as loaded from the store (at start, or changed by another replica): keeps the newer copy,
    /// re-arms its timer, and cuts its streams when it no longer grants access.
    func load(_ session: DebugSession) {
        let now = self.clock()
        let (cancels, timerChange) = self.state.withLock { state in
            if let known = state.sessions[session.id], known.history.count > session.history.count {
                return ([] as [@Sendable () -> Void], nil as Date??)
            }
            state.sessions[session.id] = session
            let timerChange = Self.setTimer(for: session, in: &state)
            let cancels = session.isActive(at: now) ? [] : Self.takeStreams(of: session.id, from: &state)
            return (cancels, timerChange)
        }
        cancels.forEach { $0() }
        if let timerChange { self.onNextTimerChange(timerChange) }
    }

    /// Adds a session just created by `DebugSessionStateMachine.create` and carries out the registry's part of
    /// its actions; returns the rest.
    func add(_ session: DebugSession, actions: [DebugSessionAction]) -> [DebugSessionAction] {
        self.state.withLock { $0.sessions[session.id] = session }
        return self.carryOut(actions)
    }

    /// Runs `body` on the session's state machine under the lock and carries out the registry's part of its
    /// actions (session kept, timers, streams cut); returns the rest, in order.
    func transition(
        id: String, _ body: (inout DebugSessionStateMachine) throws(DebugSessionError) -> [DebugSessionAction]
    ) throws(DebugSessionError) -> [DebugSessionAction] {
        let actions = try self.state.withLock { (state: inout State) throws(DebugSessionError) in
            guard let session = state.sessions[id] else {
                throw DebugSessionError(.wrongState, "no session \(id)")
            }
            var machine = DebugSessionStateMachine(session: session)
            let actions = try body(&machine)
            state.sessions[id] = machine.session
            return actions
        }
        return self.carryOut(actions)
    }

    /// Runs `handleTimer` for every session whose timer is due at the clock's now; returns the owner's actions.
    func fireDueTimers() -> [DebugSessionAction] {
        let now = self.clock()
        let actions = self.state.withLock { state in
            var actions: [DebugSessionAction] = []
            for (id, due) in state.timers.sorted(by: { $0.value < $1.value }) where due <= now {
                guard let session = state.sessions[id] else { continue }
                var machine = DebugSessionStateMachine(session: session)
                actions += machine.handleTimer(now: now)
                state.sessions[id] = machine.session
            }
            return actions
        }
        return self.carryOut(actions)
    }

    /// Carries out timers, stream cuts and session updates; returns the actions left to the owner.
    private func carryOut(_ actions: [DebugSessionAction]) -> [DebugSessionAction] {
        var left: [DebugSessionAction] = []
        var cancels: [@Sendable () -> Void] = []
        var timerChange: Date??
        self.state.withLock { state in
            let before = state.nextTimer
            for action in actions {
                switch action {
                case .scheduleTimer(let id, let at):
                    state.timers[id] = at
                case .cancelTimer(let id):
                    state.timers[id] = nil
                case .cutStreams(let id):
                    cancels += Self.takeStreams(of: id, from: &state)
                case .persist(let session):
                    state.sessions[session.id] = session
                    left.append(action)
                case .audit, .startContainer, .endDebugProcess:
                    left.append(action)
                }
            }
            state.nextTimer = state.timers.values.min()
            if state.nextTimer != before { timerChange = .some(state.nextTimer) }
        }
        cancels.forEach { $0() }
        if let timerChange { self.onNextTimerChange(timerChange) }
        return left
    }

    /// Sets the session's timer from `nextTimer`; returns the new earliest timer if it changed.
    private static func setTimer(for session: DebugSession, in state: inout State) -> Date?? {
        let before = state.nextTimer
        state.timers[session.id] = session.nextTimer
        state.nextTimer = state.timers.values.min()
        return state.nextTimer != before ? .some(state.nextTimer) : nil
    }

    // MARK: - Access and streams

    /// Whether `subject` may open an attach or exec stream to `container` of a pod now: containers named
    /// `porthole-*` are reachable only by the owner of their session while it is active (a deadline always wins).
    func access(cluster: String, namespace: String, pod: String, container: String?, subject: PolicySubject)
        -> AccessVerdict
    {
        guard let container, container.hasPrefix(DebugSession.containerPrefix) else { return .notDebugContainer }
        let now = self.clock()
        let session = self.state.withLock { state in
            state.sessions[String(container.dropFirst(DebugSession.containerPrefix.count))]
        }
        guard let session, session.cluster == cluster, session.namespace == namespace, session.pod == pod else {
            return .denied(reason: "container \(container) belongs to no debug session here")
        }
        guard session.isOwned(by: subject) else {
            return .denied(reason: "debug session \(session.id) belongs to \(session.owner.username)")
        }
        guard session.isActive(at: now) else {
            let state = session.state == .active ? "past its deadline" : session.state.rawValue
            return .denied(reason: "debug session \(session.id) is \(state)")
        }
        return .allowed(sessionID: session.id)
    }

    /// Registers a stream under an active session; `cancel` is called once, from any thread, when the session
    /// ends. Refused when the session is not active, so a stream cannot slip in after the cut.
    func registerStream(sessionID: String, cancel: @escaping @Sendable () -> Void)
        throws(DebugSessionError) -> StreamToken
    {
        let now = self.clock()
        return try self.state.withLock { (state: inout State) throws(DebugSessionError) -> StreamToken in
            guard let session = state.sessions[sessionID], session.isActive(at: now) else {
                throw DebugSessionError(.wrongState, "debug session \(sessionID) is not active")
            }
            state.nextStreamNumber += 1
            state.streams[sessionID, default: [:]][state.nextStreamNumber] = Stream(cancel: cancel)
            return StreamToken(sessionID: sessionID, number: state.nextStreamNumber)
        }
    }

    /// Forgets a stream that ended by itself.
    func unregisterStream(_ token: StreamToken) {
        self.state.withLock { state in
            state.streams[token.sessionID]?[token.number] = nil
            if state.streams[token.sessionID]?.isEmpty == true { state.streams[token.sessionID] = nil }
        }
    }

    /// How many streams are open under a session.
    func streamCount(sessionID: String) -> Int {
        self.state.withLock { $0.streams[sessionID]?.count ?? 0 }
    }

    /// Cancels every stream of a session now; returns how many.
    @discardableResult
    func cutStreams(sessionID: String) -> Int {
        let cancels = self.state.withLock { Self.takeStreams(of: sessionID, from: &$0) }
        cancels.forEach { $0() }
        return cancels.count
    }

    private static func takeStreams(of id: String, from state: inout State) -> [@Sendable () -> Void] {
        let streams = state.streams.removeValue(forKey: id) ?? [:]
        return streams.sorted { $0.key < $1.key }.map(\.value.cancel)
    }
}
