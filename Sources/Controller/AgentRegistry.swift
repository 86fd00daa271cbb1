import Foundation
import Synchronization
import Tunnel

/// A read-only view of one tunnel session, for the control API and metrics.
struct SessionSnapshot: Sendable, Codable, Equatable {
    var id: String
    var connectedSince: Date
    var activeStreams: Int
    var address: String
}

/// A read-only view of one agent name and all its sessions (replicas).
struct AgentSnapshot: Sendable, Codable, Equatable {
    var name: String
    var sessions: [SessionSnapshot]
    var services: [AdvertisedService]
    var annotations: [String: String]
}

/// A tunnel session as the registry keeps it (`TunnelSession`; fakes in tests).
protocol RegisteredSession: RoutableSession {
    var agentName: String { get }
    var address: String { get }
    var connectedSince: Date { get }
    var activeStreams: Int { get }
    var isDraining: Bool { get }
    var hello: AgentHello { get }
    /// Sends GOAWAY: no new streams; streams in flight finish.
    func drain()
}

/// Which tunnel sessions are up, by agent name. Thread-safe; sessions register after their hello.
final class AgentRegistry: Sendable {
    private let sessions = Mutex<[String: [any RegisteredSession]]>([:])
    /// Every agent name that registered since start, to tell a reconnect from a first connect.
    private let seen = Mutex<Set<String>>([])

    /// Adds a session; returns whether this agent name had registered before (a reconnect).
    @discardableResult
    func register(_ session: any RegisteredSession) -> Bool {
        self.sessions.withLock { $0[session.agentName, default: []].append(session) }
        return !self.seen.withLock { $0.insert(session.agentName).inserted }
    }

    func unregister(_ session: any RegisteredSession) {
        self.sessions.withLock { all in
            all[session.agentName]?.removeAll { $0 === session }
            if all[session.agentName]?.isEmpty == true { all[session.agentName] = nil }
        }
    }

    /// The session of `agent` with the fewest active streams, or nil when none is connected.
    func leastBusySession(of agent: String) -> (any RegisteredSession)? {
        self.sessions.withLock { all in
            all[agent]?.filter { !$0.isDraining }.min { $0.activeStreams < $1.activeStreams }
        }
    }

    var agentCount: Int { self.sessions.withLock { $0.count } }
    var sessionCount: Int { self.sessions.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    var activeStreamCount: Int {
        self.sessions.withLock { $0.values.flatMap { $0 }.reduce(0) { $0 + $1.activeStreams } }
    }

    var allSessions: [any RegisteredSession] { self.sessions.withLock { $0.values.flatMap { $0 } } }

    func snapshot() -> [AgentSnapshot] {
        let all = self.sessions.withLock { $0 }
        return all.keys.sorted().map { name in
            let sessions = all[name]!
            return AgentSnapshot(
                name: name,
                sessions: sessions.map {
                    SessionSnapshot(id: $0.id, connectedSince: $0.connectedSince, activeStreams: $0.activeStreams,
                                    address: $0.address)
                },
                services: sessions.last?.hello.services ?? [],
                annotations: sessions.last?.hello.annotations ?? [:])
        }
    }
}

extension AgentRegistry: SessionDirectory {
    func routableSession(of agent: String) -> (any RoutableSession)? {
        self.leastBusySession(of: agent)
    }
}
