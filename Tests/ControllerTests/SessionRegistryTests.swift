import Foundation
import Synchronization
import Testing

@testable import Controller

/// A clock the test moves.
private final class TestClock: Sendable {
    let time = Mutex(SessionFixture.now)
    func now() -> Date { self.time.withLock { $0 } }
    func advance(to date: Date) { self.time.withLock { $0 = date } }
}

/// What the registry told about its next timer.
private final class TimerLog: Sendable {
    let dates = Mutex<[Date?]>([])
    func withLock<T>(_ body: (inout [Date?]) -> T) -> T { self.dates.withLock { body(&$0) } }
}

@Suite struct SessionRegistryTests {
    private func makeRegistry() -> (SessionRegistry, TestClock, TimerLog) {
        let clock = TestClock()
        let changes = TimerLog()
        let registry = SessionRegistry(clock: { clock.now() }, onNextTimerChange: { date in
            changes.withLock { $0.append(date) }
        })
        return (registry, clock, changes)
    }

    @Test func expiryCutsEveryStreamAtOnce() throws {
        let (registry, clock, changes) = self.makeRegistry()
        let (created, actions) = DebugSessionStateMachine.create(
            SessionFixture.validated(), owner: SessionFixture.alice, podUID: "uid-1", id: "abc123",
            now: SessionFixture.now)
        let left = registry.add(created.session, actions: actions)
        #expect(left.count == 3) // audit, persist, startContainer
        #expect(registry.nextTimer == SessionFixture.now + 120)
        let started = try registry.transition(id: "abc123") { $0.containerStarted(at: SessionFixture.now + 5) }
        #expect(started.count == 2)
        #expect(registry.nextTimer == SessionFixture.now + 905)
        #expect(changes.withLock { $0 } == [SessionFixture.now + 120, SessionFixture.now + 905])

        let cancelled = Mutex(0)
        var tokens: [SessionRegistry.StreamToken] = []
        for _ in 0..<3 {
            tokens.append(try registry.registerStream(sessionID: "abc123") { cancelled.withLock { $0 += 1 } })
        }
        registry.unregisterStream(tokens[0])
        #expect(registry.streamCount(sessionID: "abc123") == 2)

        clock.advance(to: SessionFixture.now + 904)
        #expect(registry.fireDueTimers().isEmpty)
        clock.advance(to: SessionFixture.now + 905)
        let expiry = registry.fireDueTimers()
        #expect(cancelled.withLock { $0 } == 2)
        #expect(registry.streamCount(sessionID: "abc123") == 0)
        #expect(registry.session(id: "abc123")?.state == .expired)
        #expect(registry.nextTimer == nil)
        #expect(changes.withLock { $0.last } == .some(nil))
        #expect(expiry.contains { if case .endDebugProcess = $0 { true } else { false } })
        #expect(!expiry.contains { if case .cutStreams = $0 { true } else { false } })
        #expect(throws: DebugSessionError(.wrongState, "debug session abc123 is not active")) {
            try registry.registerStream(sessionID: "abc123") {}
        }
    }

    @Test func theDeadlineWinsBeforeTheTimerFires() throws {
        let (registry, clock, _) = self.makeRegistry()
        registry.load(SessionFixture.active().session)
        clock.advance(to: SessionFixture.now + 905)
        #expect(throws: DebugSessionError.self) { try registry.registerStream(sessionID: "abc123") {} }
        let verdict = registry.access(
            cluster: "prod-eu", namespace: "payments", pod: "api-0", container: "porthole-abc123",
            subject: SessionFixture.alice)
        #expect(verdict == .denied(reason: "debug session abc123 is past its deadline"))
    }

    @Test func accessToDebugContainers() {
        let (registry, _, _) = self.makeRegistry()
        registry.load(SessionFixture.active().session)
        let access = { (container: String?, subject: PolicySubject) in
            registry.access(cluster: "prod-eu", namespace: "payments", pod: "api-0", container: container,
                            subject: subject)
        }
        #expect(access("porthole-abc123", SessionFixture.alice) == .allowed(sessionID: "abc123"))
        #expect(access("porthole-abc123", SessionFixture.lead)
            == .denied(reason: "debug session abc123 belongs to alice"))
        #expect(access("porthole-zzz", SessionFixture.alice)
            == .denied(reason: "container porthole-zzz belongs to no debug session here"))
        #expect(access("api", SessionFixture.lead) == .notDebugContainer)
        #expect(access(nil, SessionFixture.lead) == .notDebugContainer)
        #expect(registry.access(cluster: "other", namespace: "payments", pod: "api-0", container: "porthole-abc123",
                                subject: SessionFixture.alice)
            == .denied(reason: "container porthole-abc123 belongs to no debug session here"))
    }

    @Test func aSessionEndedByAnotherReplicaCutsStreamsHere() throws {
        let (registry, _, _) = self.makeRegistry()
        var machine = SessionFixture.active()
        registry.load(machine.session)
        let cancelled = Mutex(false)
        _ = try registry.registerStream(sessionID: "abc123") { cancelled.withLock { $0 = true } }
        _ = try machine.terminate(by: DebugSessionActor(subject: SessionFixture.alice), reason: nil,
                                  now: SessionFixture.now + 10)
        registry.load(machine.session)
        #expect(cancelled.withLock { $0 })
        #expect(registry.nextTimer == nil)
        // An older copy (fewer history entries) does not overwrite the newer one.
        registry.load(SessionFixture.active().session)
        #expect(registry.session(id: "abc123")?.state == .terminated)
    }

    @Test func terminationThroughTheRegistry() throws {
        let (registry, _, _) = self.makeRegistry()
        registry.load(SessionFixture.active().session)
        let cancelled = Mutex(0)
        _ = try registry.registerStream(sessionID: "abc123") { cancelled.withLock { $0 += 1 } }
        #expect(throws: DebugSessionError(.forbidden, "only the session's owner, an approver or an admin ends it")) {
            try registry.transition(id: "abc123") { machine throws(DebugSessionError) in
                try machine.terminate(by: DebugSessionActor(subject: SessionFixture.stranger), reason: nil,
                                      now: SessionFixture.now + 10)
            }
        }
        #expect(cancelled.withLock { $0 } == 0)
        let left = try registry.transition(id: "abc123") { machine throws(DebugSessionError) in
            try machine.terminate(by: DebugSessionActor(subject: SessionFixture.admin, isAdmin: true), reason: "stop",
                                  now: SessionFixture.now + 10)
        }
        #expect(cancelled.withLock { $0 } == 1)
        #expect(left.count == 3) // audit, persist, endDebugProcess
        #expect(throws: DebugSessionError(.wrongState, "no session nope")) {
            try registry.transition(id: "nope") { _ throws(DebugSessionError) in [] }
        }
    }
}
