import Foundation

@testable import Controller

/// Fixed times and people for the debug-session tests.
enum SessionFixture {
    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    static let alice = PolicySubject(username: "alice", email: "alice@example.com", groups: ["team-payments"])
    static let lead = PolicySubject(username: "bob", email: "bob@example.com", groups: ["leads"])
    static let admin = PolicySubject(username: "root-admin", groups: ["platform"])
    static let stranger = PolicySubject(username: "mallory", groups: ["team-search"])

    static func limits(approval: Bool = false, renewalNeedsApproval: Bool = false) -> DebugLimits {
        var limits = DebugLimits()
        limits.defaultDurationSeconds = 900
        limits.maxDurationSeconds = 3600
        limits.maxRenewals = 2
        limits.renewalNeedsApproval = renewalNeedsApproval
        limits.approval = ApprovalRule(
            required: approval, approverGroups: approval || renewalNeedsApproval ? ["leads"] : [],
            pendingExpirySeconds: 600)
        limits.images = ImageRule(allowed: ["nicolaka/netshoot:v0.13", "registry.example.com/tools/*"])
        return limits
    }

    static func decision(_ limits: DebugLimits) -> PolicyDecision {
        .allow(
            "payments-debug (role debugger) grants debug on namespace payments",
            rule: .binding(
                index: 0,
                PolicyBinding(
                    name: "payments-debug", groups: ["team-payments"], role: "debugger",
                    clusters: [NameGlob("*")], namespaces: [NameGlob("payments")], debug: limits)))
    }

    static func request(duration: Int? = nil) -> DebugSessionRequest {
        DebugSessionRequest(
            cluster: "prod-eu", namespace: "payments", pod: "api-0", image: "nicolaka/netshoot:v0.13",
            targetContainer: "api", duration: duration.map(DebugDuration.init(seconds:)), reason: "INC-42 latency")
    }

    static func validated(approval: Bool = false, renewalNeedsApproval: Bool = false, duration: Int? = nil)
        -> ValidatedDebugSessionRequest
    {
        let limits = Self.limits(approval: approval, renewalNeedsApproval: renewalNeedsApproval)
        return try! Self.request(duration: duration)
            .validate(decision: Self.decision(limits), namespaceEnforceLevel: nil)
    }

    /// A machine created at `now` (no approval) and started at `now + 5`.
    static func active(renewalNeedsApproval: Bool = false) -> DebugSessionStateMachine {
        var (machine, _) = DebugSessionStateMachine.create(
            Self.validated(renewalNeedsApproval: renewalNeedsApproval), owner: Self.alice, podUID: "uid-1",
            id: "abc123", now: Self.now)
        _ = machine.containerStarted(at: Self.now + 5)
        return machine
    }
}
