import Foundation
import Testing

@testable import Controller

private let now = SessionFixture.now
private let alice = DebugSessionActor(subject: SessionFixture.alice)
private let lead = DebugSessionActor(subject: SessionFixture.lead)
private let admin = DebugSessionActor(subject: SessionFixture.admin, isAdmin: true)
private let stranger = DebugSessionActor(subject: SessionFixture.stranger)

/// The audit events among `actions`.
private func events(_ actions: [DebugSessionAction]) -> [DebugSessionEvent] {
    actions.compactMap { if case .audit(let event) = $0 { event.event } else { nil } }
}

@Suite struct DebugSessionStateMachineTests {
    @Test func createWithoutApprovalStartsTheContainer() {
        let (machine, actions) = DebugSessionStateMachine.create(
            SessionFixture.validated(), owner: SessionFixture.alice, podUID: "uid-1", id: "abc123", now: now)
        let session = machine.session
        #expect(session.state == .starting)
        #expect(session.containerName == "porthole-abc123")
        #expect(session.durationSeconds == 900)
        #expect(session.binding == "payments-debug")
        #expect(!session.isActive(at: now))
        #expect(actions.count == 4)
        #expect(events(actions) == [.created])
        #expect(actions[1] == .persist(session))
        #expect(actions[2] == .startContainer(session))
        #expect(actions[3] == .scheduleTimer(sessionID: "abc123", at: now + 120))
    }

    @Test func createWithApprovalWaits() {
        let (machine, actions) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p1", now: now)
        #expect(machine.session.state == .pendingApproval)
        #expect(machine.session.pendingUntil == now + 600)
        #expect(!actions.contains { if case .startContainer = $0 { true } else { false } })
        #expect(actions.last == .scheduleTimer(sessionID: "p1", at: now + 600))
    }

    @Test func approvalRules() throws {
        var (machine, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p1", now: now)
        // The owner, even in the approver group and even under another username with the same email.
        var owner = SessionFixture.alice
        owner.groups.append("leads")
        #expect(throws: DebugSessionError(.forbidden, "no one approves their own session")) {
            try machine.approve(by: DebugSessionActor(subject: owner), reason: "ok", now: now)
        }
        let sameEmail = PolicySubject(username: "alice2", email: "ALICE@example.com", groups: ["leads"])
        #expect(throws: DebugSessionError(.forbidden, "no one approves their own session")) {
            try machine.approve(by: DebugSessionActor(subject: sameEmail), reason: "ok", now: now)
        }
        #expect(throws: DebugSessionError(.forbidden, "only admins and groups [leads] approve this session")) {
            try machine.approve(by: stranger, reason: "ok", now: now)
        }
        #expect(throws: DebugSessionError(.invalid, "an approval needs a reason")) {
            try machine.approve(by: lead, reason: "  ", now: now)
        }
        #expect(machine.session.state == .pendingApproval)
        let actions = try machine.approve(by: lead, reason: "looks fine", now: now + 60)
        #expect(machine.session.state == .starting)
        #expect(events(actions) == [.approved])
        #expect(actions.contains(.startContainer(machine.session)))
        #expect(machine.session.history.last?.by == "bob")
        #expect(machine.session.history.last?.reason == "looks fine")
        // An admin outside the approver groups may approve too.
        var (other, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p2", now: now)
        _ = try other.approve(by: admin, reason: "admin says yes", now: now)
        #expect(other.session.state == .starting)
    }

    @Test func rejectAndPendingExpiry() throws {
        var (rejected, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p1", now: now)
        let actions = try rejected.reject(by: lead, reason: "not during the freeze", now: now + 1)
        #expect(rejected.session.state == .rejected)
        #expect(actions.last == .cancelTimer(sessionID: "p1"))

        var (pending, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p2", now: now)
        #expect(pending.handleTimer(now: now + 599) == [.scheduleTimer(sessionID: "p2", at: now + 600)])
        let expiry = pending.handleTimer(now: now + 600)
        #expect(pending.session.state == .rejected)
        #expect(pending.session.history.last?.reason == "expired while pending")
        #expect(pending.session.history.last?.by == "porthole")
        #expect(events(expiry) == [.rejected])
        #expect(throws: DebugSessionError(.wrongState, "session is Rejected; only a pending session or a pending "
            + "extension is approved")) {
            try pending.approve(by: lead, reason: "late", now: now + 601)
        }
    }

    @Test func approvingAfterThePendingDeadlineIsRefusedEvenBeforeTheTimer() {
        var (pending, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "uid-1", id: "p2", now: now)
        #expect(throws: DebugSessionError(.wrongState, "the request expired while pending")) {
            try pending.approve(by: lead, reason: "late", now: now + 600)
        }
    }

    @Test func startedSetsTheDeadlineAndTheDeadlineWins() {
        var machine = SessionFixture.active()
        #expect(machine.session.state == .active)
        #expect(machine.session.deadline == now + 5 + 900)
        #expect(machine.session.isActive(at: now + 904))
        #expect(machine.session.remainingSeconds(at: now + 904) == 1)
        // No timer fired yet, and still no access.
        #expect(!machine.session.isActive(at: now + 905))
        let actions = machine.handleTimer(now: now + 905)
        #expect(machine.session.state == .expired)
        #expect(actions.first == .cutStreams(sessionID: "abc123"))
        #expect(actions.contains(.endDebugProcess(machine.session.container)))
        #expect(events(actions) == [.expired])
    }

    @Test func startFailedKeepsTheRealReason() {
        var (machine, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(), owner: SessionFixture.alice, podUID: "uid-1", id: "f1", now: now)
        let actions = machine.startFailed(reason: "ErrImagePull: manifest unknown", now: now + 3)
        #expect(machine.session.state == .failed)
        #expect(machine.session.history.last?.reason == "ErrImagePull: manifest unknown")
        #expect(events(actions) == [.failed])
        #expect(machine.startFailed(reason: "again", now: now + 4) == [])
    }

    @Test func startTimeoutFails() {
        var (machine, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(), owner: SessionFixture.alice, podUID: "uid-1", id: "t1", now: now)
        let actions = machine.handleTimer(now: now + 120)
        #expect(machine.session.state == .failed)
        #expect(actions.contains(.endDebugProcess(machine.session.container)))
    }

    @Test func containerThatRunsAfterTerminationIsEnded() throws {
        var (machine, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(), owner: SessionFixture.alice, podUID: "uid-1", id: "t1", now: now)
        _ = try machine.terminate(by: alice, reason: nil, now: now + 1)
        #expect(machine.session.state == .terminated)
        #expect(machine.containerStarted(at: now + 2) == [.endDebugProcess(machine.session.container)])
        #expect(machine.session.state == .terminated)
    }

    @Test func extendWithinLimits() throws {
        var machine = SessionFixture.active()
        let actions = try machine.extend(by: 600, actor: alice, reason: nil, now: now + 100)
        #expect(machine.session.deadline == now + 905 + 600)
        #expect(machine.session.renewals == 1)
        #expect(events(actions) == [.extended])
        #expect(actions.last == .scheduleTimer(sessionID: "abc123", at: now + 1505))
    }

    @Test func extendBeyondTheMaximumIsRefused() throws {
        var machine = SessionFixture.active()
        // 805 s remain at now + 100; 805 + 3000 > 3600.
        #expect(throws: DebugSessionError(
            .limit, "extending by 50m would leave 1h3m25s, more than the maximum 1h; extend by at most 46m35s")) {
            try machine.extend(by: 3000, actor: alice, reason: nil, now: now + 100)
        }
        #expect(machine.session.deadline == now + 905)
        _ = try machine.extend(by: 2795, actor: alice, reason: nil, now: now + 100)
        #expect(machine.session.remainingSeconds(at: now + 100) == 3600)
    }

    @Test func extendAtMostMaxRenewalsAndOnlyByTheOwnerOrAnAdmin() throws {
        var machine = SessionFixture.active()
        #expect(throws: DebugSessionError(.forbidden, "only the session's owner or an admin extends it")) {
            try machine.extend(by: 60, actor: lead, reason: nil, now: now + 10)
        }
        _ = try machine.extend(by: 60, actor: alice, reason: nil, now: now + 10)
        _ = try machine.extend(by: 60, actor: admin, reason: "on behalf", now: now + 10)
        #expect(throws: DebugSessionError(.limit, "session was already extended 2 times, the most the policy allows")) {
            try machine.extend(by: 60, actor: alice, reason: nil, now: now + 10)
        }
        #expect(throws: DebugSessionError(
            .wrongState, "session is past its deadline; only an active session is extended")) {
            try machine.extend(by: 60, actor: alice, reason: nil, now: now + 5000)
        }
    }

    @Test func renewalThatNeedsApproval() throws {
        var machine = SessionFixture.active(renewalNeedsApproval: true)
        #expect(throws: DebugSessionError(.invalid, "an extension that needs approval needs a reason")) {
            try machine.extend(by: 600, actor: alice, reason: nil, now: now + 100)
        }
        let requested = try machine.extend(by: 600, actor: alice, reason: "still digging", now: now + 100)
        #expect(events(requested) == [.renewalRequested])
        #expect(machine.session.deadline == now + 905)
        #expect(machine.session.pendingRenewal?.pendingUntil == now + 700)
        #expect(throws: DebugSessionError(.wrongState, "an extension is already waiting for approval")) {
            try machine.extend(by: 600, actor: alice, reason: "again", now: now + 101)
        }
        #expect(throws: DebugSessionError(.forbidden, "no one approves their own session")) {
            var owner = SessionFixture.alice
            owner.groups = ["leads"]
            return try machine.approve(by: DebugSessionActor(subject: owner), reason: "me", now: now + 102)
        }
        let approved = try machine.approve(by: lead, reason: "ok", now: now + 200)
        #expect(events(approved) == [.extended])
        #expect(machine.session.deadline == now + 1505)
        #expect(machine.session.renewals == 1)
        #expect(machine.session.pendingRenewal == nil)

        // A second request lapses unapproved; the session stays active.
        _ = try machine.extend(by: 60, actor: alice, reason: "more", now: now + 300)
        let lapsed = machine.handleTimer(now: now + 900)
        #expect(events(lapsed) == [.renewalRejected])
        #expect(machine.session.state == .active)
        #expect(machine.session.pendingRenewal == nil)
        #expect(lapsed.last == .scheduleTimer(sessionID: "abc123", at: now + 1505))
    }

    @Test func terminateByOwnerApproverOrAdminOnly() throws {
        var machine = SessionFixture.active()
        #expect(throws: DebugSessionError(.forbidden, "only the session's owner, an approver or an admin ends it")) {
            try machine.terminate(by: stranger, reason: nil, now: now + 10)
        }
        let actions = try machine.terminate(by: admin, reason: "incident closed", now: now + 10)
        #expect(machine.session.state == .terminated)
        #expect(actions.first == .cutStreams(sessionID: "abc123"))
        #expect(actions.contains(.endDebugProcess(machine.session.container)))
        #expect(machine.session.history.last == DebugSessionStateChange(
            event: .terminated, state: .terminated, at: now + 10, by: "root-admin", reason: "incident closed"))
        #expect(throws: DebugSessionError(.wrongState, "session is already Terminated")) {
            try machine.terminate(by: alice, reason: nil, now: now + 11)
        }

        var owned = SessionFixture.active()
        _ = try owned.terminate(by: alice, reason: nil, now: now + 10)
        #expect(owned.session.history.last?.reason == "ended by alice")

        // An approver of the binding may end it as well.
        var withApprovers = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "u", id: "x", now: now).0
        _ = try withApprovers.terminate(by: lead, reason: "withdrawn", now: now + 1)
        #expect(withApprovers.session.state == .terminated)
    }

    @Test func terminateAfterTheDeadlineRecordsExpiry() throws {
        var machine = SessionFixture.active()
        let actions = try machine.terminate(by: alice, reason: nil, now: now + 2000)
        #expect(machine.session.state == .expired)
        #expect(events(actions) == [.expired])
    }

    @Test func auditLinesCarryTheContainerAndTheTransition() throws {
        var machine = SessionFixture.active()
        let actions = try machine.terminate(by: alice, reason: "done", now: now + 10)
        guard case .audit(let event) = actions.first(where: { if case .audit = $0 { true } else { false } }) else {
            Issue.record("no audit action")
            return
        }
        #expect(event.from == .active)
        #expect(event.to == .terminated)
        #expect(event.container == "porthole-abc123")
        #expect(event.image == "nicolaka/netshoot:v0.13")
        #expect(event.profile == .restricted)
        #expect(event.user == "alice")
        #expect(event.kind == "session")
        let line = String(decoding: DebugSessionCoding.encode(event), as: UTF8.self)
        #expect(line.contains("\"time\":\"2025-06-15T15:06:50.000Z\""))
    }

    @Test func historyRecordsEveryChange() throws {
        var (machine, _) = DebugSessionStateMachine.create(
            SessionFixture.validated(approval: true), owner: SessionFixture.alice, podUID: "u", id: "h", now: now)
        _ = try machine.approve(by: lead, reason: "ok", now: now + 1)
        _ = machine.containerStarted(at: now + 2)
        _ = try machine.extend(by: 60, actor: alice, reason: nil, now: now + 3)
        _ = machine.handleTimer(now: now + 2000)
        #expect(machine.session.history.map(\.event) == [.created, .approved, .started, .extended, .expired])
        #expect(machine.session.history.map(\.state) == [.pendingApproval, .starting, .active, .active, .expired])
    }
}
