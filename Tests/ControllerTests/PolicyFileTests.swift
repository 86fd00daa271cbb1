import Foundation
import Testing

@testable import Controller

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The error `text` (a policy file) is refused with.
private func refusal(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> PolicyError? {
    do {
        _ = try PolicyFile.decode(Data(text.utf8), path: "policy.json")
        Issue.record("expected a PolicyError", sourceLocation: sourceLocation)
    } catch {
        return error
    }
    return nil
}

/// A minimal valid policy with `binding` as its only binding.
private func policyText(binding: String, extra: String = "") -> String {
    """
    {
      "roles": {"viewer": ["view"], "debugger": ["view", "debug"]},
      "bindings": [
        {"groups": ["dev"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]},
        \(binding)
      ]\(extra)
    }
    """
}

@Suite struct PolicyFileTests {
    @Test func theWorkedExampleLoads() throws {
        let policy = try PolicyFile.load(path: repositoryRoot + "/examples/gateway/policy.json")
        #expect(policy.admins == ["platform-admins"])
        #expect(policy.roles["debugger"] == [.view, .logs, .attach, .debug])
        #expect(policy.bindings.count == 4)
        let debug = try #require(policy.bindings[2].debug)
        #expect(debug.approval == ApprovalRule(required: true, approverGroups: ["payments-leads", "sre"],
                                               pendingExpirySeconds: 1800))
        #expect(debug.images.requireDigest)
        #expect(debug.recordInput)
        #expect(policy.bindings[3].debug?.securityProfile == .baseline)
        #expect(policy.bindings[3].debug?.maxRenewals == 3)
        #expect(policy.externalDecision == ExternalDecisionSettings(
            url: "http://127.0.0.1:8181/v1/data/porthole/decision", timeoutSeconds: 1.5))
    }

    @Test func defaultsFillWhatIsNotWritten() throws {
        let policy = try PolicyFile.decode(Data(policyText(binding: """
            {"groups": ["ops"], "role": "debugger", "clusters": ["c"], "namespaces": ["n"], "debug": {}}
            """).utf8), path: "p")
        #expect(policy.admins == [])
        #expect(policy.externalDecision == nil)
        #expect(policy.bindings[0].debug == nil)
        let limits = try #require(policy.bindings[1].debug)
        #expect(limits == DebugLimits())
        #expect(limits.defaultDurationSeconds == 900 && limits.maxDurationSeconds == 3600)
        #expect(limits.securityProfile == .restricted && limits.allowTargetContainer && !limits.allowSharing)

        let short = try PolicyFile.decode(Data(policyText(binding: """
            {"groups": ["ops"], "role": "debugger", "clusters": ["c"], "namespaces": ["n"],
             "debug": {"maxDurationSeconds": 600}}
            """).utf8), path: "p")
        #expect(short.bindings[1].debug?.defaultDurationSeconds == 600)
    }

    /// Each bad file: the field path, its line:column, and a fragment of the reason.
    @Test(arguments: [
        (policyText(binding: #"{"groups": ["ops"], "role": "viewer", "clusters": ["*"], "namespace": ["x"]}"#),
         "bindings[1].namespace", "5:62", "unknown field"),
        (policyText(binding: #"{"groups": ["ops"], "role": "admin", "clusters": ["*"], "namespaces": ["*"]}"#),
         "bindings[1].role", "5:25", #""admin" is not a role (roles: debugger, viewer)"#),
        (policyText(binding: #"{"groups": ["ops"], "role": "viewer", "clusters": ["*"], "namespaces": ["Prod_[1]"]}"#),
         "bindings[1].namespaces[0]", "5:77", "only * is a wildcard"),
        (policyText(binding: #"{"groups": ["ops"], "role": "viewer", "clusters": ["prod-**"], "namespaces": ["*"]}"#),
         "bindings[1].clusters[0]", "5:56", "**"),
        (policyText(binding: #"{"groups": ["ops"], "role": "viewer", "clusters": [], "namespaces": ["*"]}"#),
         "bindings[1].clusters", "5:43", "at least one cluster"),
        (policyText(binding: #"{"groups": ["ops"], "role": "viewer", "clusters": ["*"]}"#),
         "bindings[1].namespaces", "5:5", "namespaceSelector"),
        (policyText(binding: #"{"groups": [], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]}"#),
         "bindings[1].groups", "5:6", "at least one group"),
        (policyText(binding: #"{"groups": [" dev"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]}"#),
         "bindings[1].groups[0]", "5:17", "outer spaces"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": "*"}"#),
         "bindings[1].namespaces", "5:60", "expected an array"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaceSelector": {"matchLabels": {}}}"#),
         "bindings[1].namespaceSelector.matchLabels", "5:82", "must not be empty"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaceSelector": {"matchLabels": {"-x": "y"}}}"#),
         "bindings[1].namespaceSelector.matchLabels.-x", "5:98", "not a label key"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaceSelector": {"matchExpressions": []}}"#),
         "bindings[1].namespaceSelector.matchExpressions", "5:82", "unknown field"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"], "debug": {}}"#),
         "bindings[1].debug", "5:81", "does not grant debug"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"maxDurationSeconds": 0}}"#),
         "bindings[1].debug.maxDurationSeconds", "5:93", "between 1 and"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"defaultDurationSeconds": 7200}}"#),
         "bindings[1].debug.defaultDurationSeconds", "5:93", "at most maxDurationSeconds (3600), got 7200"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"maxRenewals": -1}}"#),
         "bindings[1].debug.maxRenewals", "5:93", "0 or more"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"approval": {"required": true}}}"#),
         "bindings[1].debug.approval.approverGroups", "5:93", "at least one group when approval is required"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"renewalNeedsApproval": true}}"#),
         "bindings[1].debug.renewalNeedsApproval", "5:93", "approverGroups"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"images": {"allowed": ["ok:1", "bad image"]}}}"#),
         "bindings[1].debug.images.allowed[1]", "5:124", "has ' '"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"images": {"allowed": ["a@sha256:12"]}}}"#),
         "bindings[1].debug.images.allowed[0]", "5:116", "64 lowercase hexadecimal"),
        (policyText(binding: #"{"groups": ["a"], "role": "debugger", "clusters": ["*"], "namespaces": ["*"], "debug": {"securityProfile": "root"}}"#),
         "bindings[1].debug.securityProfile", "5:93", #""root" is not one of restricted, baseline, privileged"#),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"], "name": "x"}, {"groups": ["b"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"], "name": "x"}"#),
         "bindings[2].name", "5:171", "already the name of bindings[1]"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]}"#,
                    extra: #", "admins": [""]"#),
         "admins[0]", "6:17", "non-empty"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]}"#,
                extra: #", "externalDecision": {"url": "ftp://x/y"}"#),
         "externalDecision.url", "6:27", "http or https"),
        (policyText(binding: #"{"groups": ["a"], "role": "viewer", "clusters": ["*"], "namespaces": ["*"]}"#,
                extra: #", "externalDecision": {"url": "http://opa:8181/v1/data/p", "timeoutSeconds": 0}"#),
         "externalDecision.timeoutSeconds", "6:63", "more than 0"),
        (#"{"roles": {"viewer": ["view", "delete"]}, "bindings": []}"#, "roles.viewer[1]", "1:31",
         #""delete" is not an operation (view, logs, exec, attach, portforward, debug, read, write)"#),
        (#"{"roles": {"viewer": []}, "bindings": []}"#, "roles.viewer", "1:12", "grants no operation"),
        (#"{"roles": {"viewer": ["view", "view"]}, "bindings": []}"#, "roles.viewer", "1:12", "twice"),
        (#"{"roles": {}, "bindings": [], "extra": 1}"#, "extra", "1:31", "unknown field"),
        ("{\n  \"roles\": {}\n}", "bindings", "1:1", "required field is missing"),
    ])
    func refusesWithFieldAndLocation(_ text: String, _ field: String, _ location: String, _ reason: String) throws {
        let error = try #require(refusal(text))
        #expect(error.path == "policy.json")
        #expect(error.field == field)
        #expect(error.location.map(\.description) == location)
        #expect(error.reason.contains(reason), "\(error.reason)")
        #expect(error.description.hasPrefix("policy.json:\(location): \(field): "))
    }

    @Test(arguments: [
        ("{\n  \"roles\": {},\n  \"bindings\": [,]\n}", "3:16", "expected a value"),
        ("{\"roles\": {} \"bindings\": []}", "1:14", "expected ',' or '}'"),
        ("{\"roles\": {}, \"bindings\": [", "1:28", "unexpected end of file"),
        ("", "1:1", "unexpected end of file"),
        ("{\"a\": tru}", "1:10", "expected true"),
        ("{\"a\": 01}", "1:8", "expected ',' or '}'"),
        ("{\"a\": \"x\\q\"}", "1:10", "unknown escape"),
        ("{} {}", "1:4", "unexpected text after"),
        ("{\"roles\": {}, \"bindings\": [1,]}", "1:30", "expected a value"),
        (String(repeating: "[", count: 300), "1:257", "nested more than 256 levels deep"),
    ])
    func reportsWhereTheTextStopsBeingJSON(_ text: String, _ location: String, _ reason: String) throws {
        let error = try #require(refusal(text))
        #expect(error.field == nil)
        #expect(error.location?.description == location)
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test func anUnreadableFileSaysWhy() {
        #expect(throws: PolicyError.self) { try PolicyFile.load(path: "/nonexistent/policy.json") }
        do {
            _ = try PolicyFile.load(path: "/nonexistent/policy.json")
        } catch {
            #expect(error.description == "/nonexistent/policy.json: cannot read: No such file or directory")
        }
    }

    @Test func theSourceMapFindsNestedFieldsAndFallsBackToTheEnclosingOne() throws {
        let map = try JSONSourceMap(text: "{\n  \"a\": [\n    {\"b\": 1},\n    {\"c\": \"é\", \"d\": 2}\n  ]\n}")
        #expect(map.location(of: "a")?.description == "2:3")
        #expect(map.location(of: "a[0].b")?.description == "3:6")
        #expect(map.location(of: "a[1].d")?.description == "4:16")
        #expect(map.location(of: "a[1].missing")?.description == "4:5")
        #expect(map.location(of: "zzz")?.description == "1:1")
    }
}

@Suite struct GlobAndImageTests {
    @Test(arguments: [
        ("*", "anything", true), ("*", "", true), ("prod-*", "prod-eu", true), ("prod-*", "prod-", true),
        ("prod-*", "staging-prod-eu", false), ("*-eu", "prod-eu", true), ("*-eu", "prod-eux", false),
        ("a*b*c", "aXbYc", true), ("a*b*c", "abcbc", true), ("a*b*c", "acb", false), ("payments", "payments", true),
        ("payments", "Payments", false), ("payments", "payments-api", false), ("*a*", "bab", true),
    ])
    func namesMatch(_ pattern: String, _ name: String, _ matches: Bool) {
        #expect(NameGlob(pattern).matches(name) == matches)
    }

    @Test(arguments: [
        ("", "must not be empty"), ("a**", "**"), ("team?", "only * is a wildcard"), ("a/b", "'/'"),
        ("ns[1]", "only * is a wildcard"), ("ü", "'ü'"),
    ])
    func badGlobsAreExplained(_ pattern: String, _ problem: String) {
        #expect(NameGlob.problem(with: pattern)?.contains(problem) == true)
    }

    static let digest = "@sha256:" + String(repeating: "ab", count: 32)

    @Test(arguments: [
        ("nicolaka/netshoot:v0.13", true), ("nicolaka/netshoot:v0.13" + digest, true),
        ("nicolaka/netshoot:v0.14", false), ("nicolaka/netshoot", false),
        ("registry.example.com/tools/netshoot:1", true), ("registry.example.com/tools/debug" + digest, true),
        ("registry.example.com/tools/x/y:1", false), ("registry.example.com/toolsx/y:1", false),
        ("evil.example.com/registry.example.com/tools/a:1", false), ("busybox@sha256:00", false),
        ("pinned/only" + digest, true), ("pinned/only", false),
        ("pinned/only@sha256:" + String(repeating: "cd", count: 32), false),
        ("bad image", false),
    ])
    func imagesAreCheckedAgainstTheAllowList(_ image: String, _ allowed: Bool) {
        let rule = ImageRule(
            allowed: ["nicolaka/netshoot:v0.13", "registry.example.com/tools/*", "pinned/only" + Self.digest])
        #expect(rule.check(image).isAllowed == allowed, "\(rule.check(image))")
    }

    @Test func aDigestCanBeRequired() {
        let rule = ImageRule(allowed: ["registry.example.com/tools/*", "busybox:1.36"], requireDigest: true)
        #expect(
            rule.check("busybox:1.36")
                == .denied(reason: "image \"busybox:1.36\" must be pinned by digest (@sha256:…)"))
        #expect(rule.check("busybox:1.36" + Self.digest) == .allowed(matchedEntry: "busybox:1.36"))
        #expect(
            rule.check("registry.example.com/tools/x" + Self.digest)
                == .allowed(matchedEntry: "registry.example.com/tools/*"))
        #expect(
            ImageRule().check("busybox:1.36")
                == .denied(reason: "image \"busybox:1.36\" is not allowed (no image is allowed)"))
    }
}
