import Testing

@testable import Controller

/// A policy exercising every kind of rule: globs, label selectors, users, admins, first-match order.
let decisionPolicy = Policy(
    roles: [
        "viewer": [.view, .logs],
        "developer": [.view, .logs, .exec, .attach, .portforward, .read],
        "debugger": [.view, .attach, .debug],
        "operator": PolicyOperation.allCases,
    ],
    bindings: [
        PolicyBinding(groups: ["dev"], role: "viewer", clusters: [NameGlob("*")], namespaces: [NameGlob("*")]),
        PolicyBinding(
            name: "payments-dev", groups: ["team-payments"], role: "developer",
            clusters: [NameGlob("staging-*"), NameGlob("dev")],
            namespaces: [NameGlob("payments"), NameGlob("payments-*")]),
        PolicyBinding(
            name: "payments-prod", groups: ["team-payments"], users: ["oncall@example.com"], role: "debugger",
            clusters: [NameGlob("prod-*")], namespaces: [NameGlob("payments-*")],
            namespaceSelector: NamespaceSelector(matchLabels: ["team": "payments"]),
            debug: {
                var limits = DebugLimits()
                limits.maxDurationSeconds = 1800
                limits.approval = ApprovalRule(required: true, approverGroups: ["leads"])
                return limits
            }()),
        PolicyBinding(
            name: "labelled", groups: ["team-search"], role: "developer", clusters: [NameGlob("*-eu")],
            namespaceSelector: NamespaceSelector(matchLabels: ["team": "search"])),
        PolicyBinding(groups: ["sre"], role: "operator", clusters: [NameGlob("*")], namespaces: [NameGlob("*")]),
    ],
    admins: ["platform"])

/// One row of the decision table.
struct DecisionCase: CustomTestStringConvertible, Sendable {
    var groups: [String]
    var user = "alice"
    var email: String? = nil
    var cluster: String
    var scope: PolicyScope
    var operation: PolicyOperation
    var allowed: Bool
    /// A fragment the reason must contain.
    var reason: String

    var testDescription: String { "\(self.groups) \(self.operation) \(self.scope.text) in \(self.cluster)" }
}

private let payments = ["team": "payments"]

@Suite struct PolicyDecisionTests {
    static let table: [DecisionCase] = [
        // Everyone in dev views everywhere, nothing more.
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .namespace("payments", labels: nil),
                     operation: .view, allowed: true,
                     reason: "bindings[0] (role viewer) grants view on namespace payments in cluster prod-eu to "
                         + "group dev"),
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .namespace("payments", labels: nil),
                     operation: .logs, allowed: true, reason: "bindings[0]"),
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .namespace("payments", labels: nil),
                     operation: .exec, allowed: false,
                     reason: "no binding grants exec on namespace payments in cluster prod-eu to groups [dev] "
                         + "(bindings[0] grants only view, logs there)"),
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .allNamespaces, operation: .view, allowed: true,
                     reason: "on all namespaces"),
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .cluster, operation: .view, allowed: true,
                     reason: "on non-resource paths"),
        DecisionCase(groups: ["dev"], cluster: "prod-eu", scope: .cluster, operation: .read, allowed: false,
                     reason: "no binding grants read on non-resource paths"),
        // Cluster globs: staging-* and an exact name.
        DecisionCase(groups: ["team-payments"], cluster: "staging-1", scope: .namespace("payments", labels: nil),
                     operation: .exec, allowed: true, reason: "payments-dev (role developer) grants exec"),
        DecisionCase(groups: ["team-payments"], cluster: "dev", scope: .namespace("payments-api", labels: nil),
                     operation: .portforward, allowed: true, reason: "payments-dev"),
        DecisionCase(groups: ["team-payments"], cluster: "devx", scope: .namespace("payments", labels: nil),
                     operation: .exec, allowed: false,
                     reason: "no binding grants exec on namespace payments in cluster devx to groups [team-payments]"),
        DecisionCase(groups: ["team-payments"], cluster: "staging-1", scope: .namespace("billing", labels: nil),
                     operation: .view, allowed: false, reason: "no binding grants view on namespace billing"),
        // Namespace globs do not match a prefix alone.
        DecisionCase(groups: ["team-payments"], cluster: "staging-1", scope: .namespace("paymentsx", labels: nil),
                     operation: .exec, allowed: false, reason: "no binding"),
        // A cluster-wide list needs a binding on every namespace.
        DecisionCase(groups: ["team-payments"], cluster: "staging-1", scope: .allNamespaces, operation: .view,
                     allowed: false, reason: "(payments-dev grants it only in some namespaces; name one)"),
        // Globs and labels together: both must match; unknown labels never match.
        DecisionCase(groups: ["team-payments"], cluster: "prod-eu", scope: .namespace("payments-api", labels: payments),
                     operation: .debug, allowed: true, reason: "payments-prod (role debugger) grants debug"),
        DecisionCase(groups: ["team-payments"], cluster: "prod-eu",
                     scope: .namespace("payments-api", labels: ["team": "search"]), operation: .debug,
                     allowed: false, reason: "no binding grants debug"),
        DecisionCase(groups: ["team-payments"], cluster: "prod-eu", scope: .namespace("billing", labels: payments),
                     operation: .debug, allowed: false, reason: "no binding grants debug on namespace billing"),
        DecisionCase(groups: ["team-payments"], cluster: "prod-eu", scope: .namespace("payments-api", labels: nil),
                     operation: .debug, allowed: false,
                     reason: "payments-prod selects namespaces by labels (team=payments), which are unknown"),
        DecisionCase(groups: ["team-payments"], cluster: "prod-eu",
                     scope: .namespace("payments-api", labels: payments), operation: .exec, allowed: false,
                     reason: "(payments-prod grants only view, attach, debug there)"),
        // A selector alone: any namespace name with the label.
        DecisionCase(groups: ["team-search"], cluster: "prod-eu", scope: .namespace("idx", labels: ["team": "search",
                     "tier": "prod"]), operation: .exec, allowed: true, reason: "labelled (role developer)"),
        DecisionCase(groups: ["team-search"], cluster: "prod-us", scope: .namespace("idx", labels: ["team": "search"]),
                     operation: .exec, allowed: false, reason: "in cluster prod-us"),
        DecisionCase(groups: ["team-search"], cluster: "prod-eu", scope: .allNamespaces, operation: .view,
                     allowed: false, reason: "no binding grants view on all namespaces"),
        // Users, by username or email.
        DecisionCase(groups: [], user: "bob", email: "oncall@example.com", cluster: "prod-eu",
                     scope: .namespace("payments-api", labels: payments), operation: .attach, allowed: true,
                     reason: "to user oncall@example.com"),
        DecisionCase(groups: [], user: "oncall@example.com", cluster: "prod-eu",
                     scope: .namespace("payments-api", labels: payments), operation: .debug, allowed: true,
                     reason: "to user oncall@example.com"),
        DecisionCase(groups: [], user: "bob", cluster: "prod-eu", scope: .namespace("payments-api", labels: payments),
                     operation: .view, allowed: false,
                     reason: "no binding grants view on namespace payments-api in cluster prod-eu to user bob "
                         + "(no groups)"),
        // First match wins: dev's viewer binding decides view even for an sre.
        DecisionCase(groups: ["dev", "sre"], cluster: "prod-eu", scope: .namespace("kube-system", labels: nil),
                     operation: .view, allowed: true, reason: "bindings[0] (role viewer)"),
        DecisionCase(groups: ["dev", "sre"], cluster: "prod-eu", scope: .namespace("kube-system", labels: nil),
                     operation: .write, allowed: true, reason: "bindings[4] (role operator) grants write"),
        DecisionCase(groups: ["sre"], cluster: "any", scope: .allNamespaces, operation: .write, allowed: true,
                     reason: "bindings[4]"),
        // Admins may do everything everywhere.
        DecisionCase(groups: ["x", "platform"], cluster: "prod-eu", scope: .namespace("kube-system", labels: nil),
                     operation: .debug, allowed: true, reason: "group platform is an admin group"),
        DecisionCase(groups: ["platform"], cluster: "anything", scope: .allNamespaces, operation: .write,
                     allowed: true, reason: "admin group"),
        // Unknown groups get nothing.
        DecisionCase(groups: ["Dev"], cluster: "prod-eu", scope: .namespace("payments", labels: nil),
                     operation: .view, allowed: false, reason: "to groups [Dev]"),
    ]

    @Test(arguments: Self.table)
    func decides(_ row: DecisionCase) {
        let subject = PolicySubject(username: row.user, email: row.email, groups: row.groups)
        let decision = decisionPolicy.decide(
            PolicyRequest(subject: subject, cluster: row.cluster, scope: row.scope, operation: row.operation))
        #expect(decision.isAllowed == row.allowed, "\(decision.reason)")
        #expect(decision.reason.contains(row.reason), "\(decision.reason)")
        #expect((decision.rule != nil) == row.allowed)
    }

    /// Every group × cluster × namespace × operation against an independent statement of the same rules.
    @Test func theFullTableAgreesWithTheRulesWrittenOut() {
        let groups = ["dev", "team-payments", "team-search", "sre", "platform", "nobody"]
        let clusters = ["prod-eu", "staging-1", "dev", "other"]
        let namespaces: [(String, [String: String]?)] = [
            ("payments", nil), ("payments-api", payments), ("payments-api", nil), ("search", ["team": "search"]),
            ("kube-system", [:]),
        ]
        for group in groups {
            for cluster in clusters {
                for (namespace, labels) in namespaces {
                    for operation in PolicyOperation.allCases {
                        let expected = Self.expected(group, cluster, namespace, labels, operation)
                        let decision = decisionPolicy.decide(
                            PolicyRequest(
                                subject: PolicySubject(username: "u", groups: [group]), cluster: cluster,
                                scope: .namespace(namespace, labels: labels), operation: operation))
                        #expect(
                            decision.isAllowed == expected,
                            "\(group) \(operation) \(namespace) \(String(describing: labels)) in \(cluster)")
                    }
                }
            }
        }
    }

    private static func expected(
        _ group: String, _ cluster: String, _ namespace: String, _ labels: [String: String]?,
        _ operation: PolicyOperation
    ) -> Bool {
        switch group {
        case "platform", "sre": return true
        case "dev": return [.view, .logs].contains(operation)
        case "team-payments":
            let developer: Set<PolicyOperation> = [.view, .logs, .exec, .attach, .portforward, .read]
            if cluster == "staging-1" || cluster == "dev", namespace.hasPrefix("payments"),
                developer.contains(operation)
            {
                return true
            }
            return cluster.hasPrefix("prod-") && namespace.hasPrefix("payments-") && labels?["team"] == "payments"
                && [.view, .attach, .debug].contains(operation)
        case "team-search":
            return cluster.hasSuffix("-eu") && labels?["team"] == "search"
                && [.view, .logs, .exec, .attach, .portforward, .read].contains(operation)
        default: return false
        }
    }

    @Test func theMatchedBindingCarriesItsDebugLimits() {
        let subject = PolicySubject(username: "alice", groups: ["team-payments"])
        let decision = decisionPolicy.decide(
            PolicyRequest(
                subject: subject, cluster: "prod-eu", scope: .namespace("payments-api", labels: payments),
                operation: .debug))
        #expect(decision.binding?.name == "payments-prod")
        #expect(decision.debugLimits?.maxDurationSeconds == 1800)
        #expect(decision.debugLimits?.approval.required == true)
        guard case .binding(let index, _)? = decision.rule else {
            Issue.record("expected a binding")
            return
        }
        #expect(index == 2)

        let admin = decisionPolicy.decide(
            PolicyRequest(
                subject: PolicySubject(username: "root", groups: ["platform"]), cluster: "x", scope: .cluster,
                operation: .debug))
        #expect(admin.rule == .admin(group: "platform"))
        #expect(admin.debugLimits == DebugLimits())

        let denied = decisionPolicy.decide(
            PolicyRequest(subject: subject, cluster: "x", scope: .cluster, operation: .debug))
        #expect(denied.debugLimits == nil)
    }

    @Test func approversAreTheBindingsGroupsAndAdmins() {
        let binding = decisionPolicy.bindings[2]
        #expect(decisionPolicy.mayApprove(PolicySubject(username: "l", groups: ["leads"]), for: binding))
        #expect(decisionPolicy.mayApprove(PolicySubject(username: "p", groups: ["platform"]), for: binding))
        #expect(!decisionPolicy.mayApprove(PolicySubject(username: "d", groups: ["team-payments"]), for: binding))
        #expect(!decisionPolicy.mayApprove(PolicySubject(username: "l", groups: ["leads"]), for: nil))
    }

    @Test func anEmptyPolicyDeniesEverything() {
        let decision = Policy.empty.decide(
            PolicyRequest(
                subject: PolicySubject(username: "a", groups: ["dev"]), cluster: "c", scope: .cluster,
                operation: .view))
        #expect(decision == .deny("no binding grants view on non-resource paths in cluster c to groups [dev]"))
    }
}

@Suite struct PolicyVisibilityTests {
    let developer = PolicySubject(username: "alice", groups: ["team-payments"])

    @Test func listsTheClustersAnIdentityMayUse() {
        let agents = ["prod-eu", "staging-1", "dev", "lab"]
        #expect(decisionPolicy.clusters(for: self.developer, among: agents) == ["prod-eu", "staging-1", "dev"])
        #expect(decisionPolicy.clusters(for: PolicySubject(username: "n", groups: []), among: agents) == [])
        let admin = PolicySubject(username: "p", groups: ["platform"])
        #expect(decisionPolicy.clusters(for: admin, among: agents) == agents)
    }

    @Test func listsTheNamespacesAndOperations() {
        let namespaces: [(name: String, labels: [String: String]?)] = [
            ("payments", nil), ("payments-api", payments), ("payments-web", ["team": "web"]), ("billing", [:]),
        ]
        #expect(
            decisionPolicy.namespaces(for: self.developer, cluster: "staging-1", among: namespaces)
                == ["payments", "payments-api", "payments-web"])
        #expect(
            decisionPolicy.namespaces(for: self.developer, cluster: "prod-eu", among: namespaces) == ["payments-api"])
        #expect(
            decisionPolicy.namespaces(for: self.developer, cluster: "staging-1", among: namespaces, operation: .debug)
                == [])
        #expect(
            decisionPolicy.operations(
                for: self.developer, cluster: "prod-eu", scope: .namespace("payments-api", labels: payments))
                == [.view, .attach, .debug])
        let both = PolicySubject(username: "b", groups: ["dev", "team-payments"])
        #expect(
            decisionPolicy.operations(
                for: both, cluster: "prod-eu", scope: .namespace("payments-api", labels: payments))
                == [.view, .logs, .attach, .debug])
    }

    @Test func summarisesTheGrantsOfAnIdentity() {
        let grants = decisionPolicy.grants(for: PolicySubject(username: "b", groups: ["dev", "team-payments"]))
        #expect(grants.map(\.binding) == ["bindings[0]", "payments-dev", "payments-prod"])
        #expect(grants[2].namespaceSelector == payments)
        #expect(grants[2].operations == [.view, .attach, .debug])
        let admin = decisionPolicy.grants(for: PolicySubject(username: "p", groups: ["platform"]))
        #expect(admin.count == 1 && admin[0].operations == PolicyOperation.allCases)
    }
}
