import Foundation
import Synchronization
import Testing

@testable import Controller

/// Answers every POST with `outcome` and remembers the bodies.
private final class FakeDecisionClient: ExternalDecisionClient {
    let outcome: ExternalDecision.Outcome
    let bodies = Mutex<[Data]>([])

    init(_ outcome: ExternalDecision.Outcome) { self.outcome = outcome }

    func post(url: String, body: Data, timeoutSeconds: Double) async -> ExternalDecision.Outcome {
        self.bodies.withLock { $0.append(body) }
        return self.outcome
    }
}

private func response(_ json: String, status: Int = 200) -> ExternalDecision.Outcome {
    .response(status: status, body: Data(json.utf8))
}

@Suite struct ExternalDecisionTests {
    @Test(arguments: [
        (response(#"{"result": {"allow": true, "reason": "on call"}}"#), true, "on call"),
        (response(#"{"result": {"allow": true}}"#), true, "allowed"),
        (response(#"{"result": true}"#), true, "allowed"),
        (response(#"{"result": {"allow": false, "reason": "change freeze"}}"#), false, "change freeze"),
        (response(#"{"result": {"allow": false}}"#), false, "denied, without a reason"),
        (response(#"{"result": false}"#), false, "denied"),
        (response(#"{}"#), false, "without a result"),
        (response(#"{"result": null}"#), false, "without a result"),
        (response(#"{"result": {"reason": "x"}}"#), false, "has no allow"),
        (response(#"{"result": {"allow": "true"}}"#), false, "result.allow is not true or false"),
        (response(#"{"result": {"allow": 1}}"#), false, "result.allow is not true or false"),
        (response(#"{"result": "yes"}"#), false, "result is not an object"),
        (response(#"[true]"#), false, "not a JSON object"),
        (response("not json"), false, "not a JSON object"),
        (response(#"{"result": {"allow": true}}"#, status: 500), false, "answered HTTP 500"),
        (response(#"{"result": {"allow": true}}"#, status: 204), false, "answered HTTP 204"),
        (.failed(reason: "connection refused"), false, "failed: connection refused"),
        (.timedOut, false, "did not answer within 1.5s"),
        (.response(status: 200, body: Data(repeating: 32, count: 70_000)), false, "larger than"),
    ])
    func interpretsTheAnswer(_ outcome: ExternalDecision.Outcome, _ allowed: Bool, _ reason: String) {
        let verdict = ExternalDecision.interpret(outcome, timeoutSeconds: 1.5)
        #expect(verdict.isAllowed == allowed)
        #expect(verdict.reason.contains(reason), "\(verdict.reason)")
    }

    @Test func theRequestBodyIsTheInputInOPAsShape() throws {
        let subject = PolicySubject(username: "alice", email: "alice@example.com", groups: ["dev"])
        let attributes = try KubernetesRequestAttributes(
            method: "GET", path: "/api/v1/namespaces/payments/pods/api-0/log", query: nil)
        let request = attributes.policyRequest(subject: subject, cluster: "prod-eu", namespaceLabels: ["team": "p"])
        let decision = PolicyDecision.allow("bindings[0] grants", rule: .admin(group: "x"))
        let body = ExternalDecision.requestBody(
            ExternalDecision.Input(request: request, attributes: attributes, decision: decision, bindingLabel: "b0"))
        let expected = #"{"input":{"cluster":"prod-eu","kubernetes":{"apiGroup":"","apiVersion":"v1","#
            + #""isResourceRequest":true,"name":"api-0","namespace":"payments","path":"/api/v1/namespaces/payments/"#
            + #"pods/api-0/log","resource":"pods","subresource":"log","verb":"get"},"namespace":"payments","#
            + #""namespaceLabels":{"team":"p"},"operation":"logs","policy":{"allow":true,"binding":"b0","#
            + #""reason":"bindings[0] grants"},"scope":"namespace","user":{"email":"alice@example.com","#
            + #""groups":["dev"],"username":"alice"}}}"#
        #expect(String(decoding: body, as: UTF8.self) == expected)
    }

    private static let policy = Policy(
        roles: ["viewer": [.view]],
        bindings: [
            PolicyBinding(groups: ["dev"], role: "viewer", clusters: [NameGlob("*")], namespaces: [NameGlob("*")])
        ],
        externalDecision: ExternalDecisionSettings(url: "http://opa:8181/v1/data/porthole/decision", timeoutSeconds: 1))
    private static let view = PolicyRequest(
        subject: PolicySubject(username: "alice", groups: ["dev"]), cluster: "c", scope: .namespace("n", labels: nil),
        operation: .view)

    @Test func bothThePolicyAndTheEndpointMustAllow() async throws {
        let allowing = FakeDecisionClient(response(#"{"result": {"allow": true, "reason": "ok"}}"#))
        let allowed = await Self.policy.decide(Self.view, attributes: nil, consulting: allowing)
        #expect(allowed.isAllowed)
        #expect(allowed.reason.hasSuffix("; the external decision allows: ok"))
        #expect(allowed.binding != nil)
        let sent = try #require(allowing.bodies.withLock { $0.first })
        #expect(String(decoding: sent, as: UTF8.self).contains(#""binding":"bindings[0]""#))

        let silent = FakeDecisionClient(.timedOut)
        let denied = await Self.policy.decide(Self.view, attributes: nil, consulting: silent)
        #expect(!denied.isAllowed && denied.rule == nil)
        #expect(denied.reason.hasSuffix(
            "but the external decision denies: the external decision did not answer within 1s"))
    }

    @Test func aLocalDenyIsFinalWithoutAsking() async {
        let client = FakeDecisionClient(response(#"{"result": true}"#))
        var request = Self.view
        request.operation = .exec
        let decision = await Self.policy.decide(request, attributes: nil, consulting: client)
        #expect(!decision.isAllowed)
        #expect(client.bodies.withLock { $0.isEmpty })
    }

    @Test func withoutAnEndpointTheLocalDecisionStands() async {
        var policy = Self.policy
        policy.externalDecision = nil
        let client = FakeDecisionClient(.timedOut)
        let decision = await policy.decide(Self.view, attributes: nil, consulting: client)
        #expect(decision == policy.decide(Self.view))
        #expect(client.bodies.withLock { $0.isEmpty })
    }
}

@Suite struct PolicyStoreTests {
    private static let good = #"{"roles": {"viewer": ["view"]}, "bindings": []}"#
    private static let other = #"{"roles": {"viewer": ["view"], "ops": ["write"]}, "bindings": [], "admins": ["a"]}"#

    private final class Directory {
        let path = NSTemporaryDirectory() + "porthole-policy-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: self.path) }
        func write(_ text: String) throws -> String {
            let file = self.path + "/policy.json"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
    }

    @Test func reloadsAChangedFileAndKeepsTheLastGoodPolicy() throws {
        let directory = try Directory()
        let path = try directory.write(Self.good)
        let store = try PolicyStore(path: path)
        #expect(store.policy.roles.keys.sorted() == ["viewer"])
        #expect(store.reloadIfChanged() == .unchanged)

        _ = try directory.write(Self.other)
        #expect(store.reloadIfChanged() == .reloaded)
        #expect(store.policy.admins == ["a"])

        _ = try directory.write(#"{"roles": {"viewer": ["view"]}, "bindings": [], "admin": []}"#)
        guard case .refused(let error) = store.reloadIfChanged() else {
            Issue.record("expected a refusal")
            return
        }
        #expect(error.field == "admin" && error.location?.description == "1:49")
        #expect(store.policy.admins == ["a"])
        #expect(store.lastError == error)
        #expect(store.reloadIfChanged() == .unchanged)

        _ = try directory.write(Self.good)
        #expect(store.reloadIfChanged() == .reloaded)
        #expect(store.lastError == nil)
        #expect(store.policy.admins == [])

        try FileManager.default.removeItem(atPath: path)
        guard case .refused(let missing) = store.reloadIfChanged() else {
            Issue.record("expected a refusal")
            return
        }
        #expect(missing.reason.contains("No such file"))
        #expect(store.policy.roles.keys.sorted() == ["viewer"])
    }

    @Test func aBadFirstFileIsAnError() throws {
        let directory = try Directory()
        let path = try directory.write("{")
        #expect(throws: PolicyError.self) { try PolicyStore(path: path) }
    }

    @Test func checksPeriodically() async throws {
        let directory = try Directory()
        let path = try directory.write(Self.good)
        let store = try PolicyStore(path: path)
        store.checkPeriodically(every: 0.05)
        _ = try directory.write(Self.other)
        for _ in 0..<100 where store.policy.admins.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(store.policy.admins == ["a"])
    }
}
