import Foundation
import Testing

@testable import Controller

@Suite struct DebugSessionRequestTests {
    private func validate(_ request: DebugSessionRequest, limits: DebugLimits = SessionFixture.limits(),
                          level: String? = nil) throws(DebugSessionError) -> ValidatedDebugSessionRequest {
        try request.validate(decision: SessionFixture.decision(limits), namespaceEnforceLevel: level)
    }

    @Test func defaultsAndWhatIsKept() throws {
        var request = SessionFixture.request()
        request.reason = "  INC-42 latency \n"
        let validated = try self.validate(request)
        #expect(validated.durationSeconds == 900)
        #expect(validated.reason == "INC-42 latency")
        #expect(validated.profile == .restricted)
        #expect(validated.binding == "payments-debug")
        #expect(validated.matchedImageEntry == "nicolaka/netshoot:v0.13")
        #expect(validated.targetContainer == "api")
    }

    @Test func aDeniedDecisionIsForbidden() {
        #expect(throws: DebugSessionError(.forbidden, "no binding grants debug")) {
            try SessionFixture.request().validate(
                decision: .deny("no binding grants debug"), namespaceEnforceLevel: nil)
        }
    }

    @Test func adminsGetDefaultLimitsWhichAllowNoImage() {
        let decision = PolicyDecision.allow("group platform is an admin group", rule: .admin(group: "platform"))
        #expect(throws: DebugSessionError(
            .limit, "image \"nicolaka/netshoot:v0.13\" is not allowed (no image is allowed)")) {
            try SessionFixture.request().validate(decision: decision, namespaceEnforceLevel: nil)
        }
    }

    @Test func durations() throws {
        #expect(try self.validate(SessionFixture.request(duration: 3600)).durationSeconds == 3600)
        #expect(throws: DebugSessionError(.limit, "duration 1h1s is longer than the maximum 1h")) {
            try self.validate(SessionFixture.request(duration: 3601))
        }
        #expect(throws: DebugSessionError(.invalid, "duration must be positive, got 0s")) {
            try self.validate(SessionFixture.request(duration: 0))
        }
        #expect(DebugDuration.parse("15m") == 900)
        #expect(DebugDuration.parse("1h30m") == 5400)
        #expect(DebugDuration.parse("90s") == 90)
        #expect(DebugDuration.parse("600") == 600)
        for bad in ["", "m", "15x", "30m1h", "1h1h", "1.5h", "-5m", "15m ", "999999999h"] {
            #expect(DebugDuration.parse(bad) == nil, "\(bad)")
        }
        #expect(DebugDuration.text(3725) == "1h2m5s")
    }

    @Test func decodingNamesTheField() throws {
        let body = #"{"cluster":"c","namespace":"n","pod":"p","image":"i","duration":"20m","reason":"r"}"#
        #expect(try DebugSessionRequest.decode(Array(body.utf8)).duration == DebugDuration(seconds: 1200))
        #expect(throws: DebugSessionError(.invalid, "field reason is required")) {
            try DebugSessionRequest.decode(Array(#"{"cluster":"c","namespace":"n","pod":"p","image":"i"}"#.utf8))
        }
        #expect(throws: DebugSessionError(.invalid, "field command.[0] has the wrong type")) {
            try DebugSessionRequest.decode(Array(
                #"{"cluster":"c","namespace":"n","pod":"p","image":"i","reason":"r","command":[1]}"#.utf8))
        }
        #expect(throws: DebugSessionError.self) {
            try DebugSessionRequest.decode(Array("[]".utf8))
        }
    }

    @Test func images() throws {
        var request = SessionFixture.request()
        request.image = "registry.example.com/tools/netshoot:v1"
        #expect(try self.validate(request).matchedImageEntry == "registry.example.com/tools/*")
        request.image = "registry.example.com/tools/x/y:1"
        #expect(throws: DebugSessionError.self) { try self.validate(request) }
        request.image = "nicolaka/netshoot:v0.13@sha256:" + String(repeating: "a", count: 64)
        #expect(try self.validate(request).image == request.image)

        var limits = SessionFixture.limits()
        limits.images.requireDigest = true
        request.image = "nicolaka/netshoot:v0.13"
        #expect(throws: DebugSessionError(
            .limit, "image \"nicolaka/netshoot:v0.13\" must be pinned by digest (@sha256:…)")) {
            try self.validate(request, limits: limits)
        }
    }

    @Test func targetContainer() throws {
        var limits = SessionFixture.limits()
        limits.allowTargetContainer = false
        #expect(throws: DebugSessionError(.limit, "the policy does not allow a target container here")) {
            try self.validate(SessionFixture.request(), limits: limits)
        }
        var request = SessionFixture.request()
        request.targetContainer = nil
        #expect(try self.validate(request, limits: limits).targetContainer == nil)
        request.targetContainer = "porthole-abc"
        #expect(throws: DebugSessionError(.invalid, "targetContainer must not be another debug container")) {
            try self.validate(request)
        }
    }

    @Test func reasonAndNames() throws {
        var request = SessionFixture.request()
        request.reason = " \n "
        #expect(throws: DebugSessionError(.invalid, "a reason is required")) { try self.validate(request) }
        request.reason = String(repeating: "x", count: 1001)
        #expect(throws: DebugSessionError(.invalid, "the reason is longer than 1000 characters")) {
            try self.validate(request)
        }
        request.reason = "bell\u{7}"
        #expect(throws: DebugSessionError(.invalid, "the reason has control characters")) { try self.validate(request) }

        for (namespace, pod) in [("Payments", "api-0"), ("payments", "api_0"), ("-x", "api"), ("payments", "")] {
            var bad = SessionFixture.request()
            bad.namespace = namespace
            bad.pod = pod
            #expect(throws: DebugSessionError.self) { try self.validate(bad) }
        }
        var dotted = SessionFixture.request()
        dotted.pod = "api.v2-0"
        #expect(try self.validate(dotted).pod == "api.v2-0")
    }

    @Test func command() throws {
        var request = SessionFixture.request()
        request.command = []
        #expect(throws: DebugSessionError(
            .invalid, "command must not be empty; leave it out for the image's entrypoint")) {
            try self.validate(request)
        }
        request.command = Array(repeating: "x", count: 65)
        #expect(throws: DebugSessionError.self) { try self.validate(request) }
        request.command = ["sh", "-c", "sleep 1"]
        #expect(try self.validate(request).command == ["sh", "-c", "sleep 1"])
    }

    @Test func profiles() throws {
        var limits = SessionFixture.limits()
        limits.securityProfile = .privileged
        #expect(try self.validate(SessionFixture.request(), limits: limits, level: "privileged").profile == .privileged)
        #expect(throws: DebugSessionError(
            .limit, "namespace payments enforces PodSecurity restricted, which refuses a privileged debug container; "
                + "ask for the restricted profile")) {
            try self.validate(SessionFixture.request(), limits: limits, level: "restricted")
        }
        var request = SessionFixture.request()
        request.profile = .restricted
        #expect(try self.validate(request, limits: limits, level: "restricted").profile == .restricted)
        request.profile = .baseline
        #expect(throws: DebugSessionError(
            .limit, "the policy allows at most the restricted profile here, not baseline")) {
            try self.validate(request)
        }
    }

    @Test func profileChoiceTable() {
        let rows: [(String?, SecurityProfile, SecurityProfile?, ProfileChoice)] = [
            (nil, .restricted, nil, .use(.restricted)),
            (nil, .privileged, nil, .use(.privileged)),
            ("restricted", .restricted, nil, .use(.restricted)),
            ("baseline", .baseline, nil, .use(.baseline)),
            ("baseline", .privileged, .baseline, .use(.baseline)),
            ("privileged", .baseline, nil, .use(.baseline)),
            ("baseline", .privileged, nil,
             .refused("the namespace enforces PodSecurity baseline, which refuses a privileged debug container; ask "
                 + "for the baseline profile")),
            ("Restricted", .baseline, nil,
             .refused("the namespace enforces PodSecurity Restricted, which refuses a baseline debug container; ask "
                 + "for the restricted profile")),
        ]
        for (label, binding, requested, expected) in rows {
            #expect(ProfileChoice.for(namespaceEnforceLevel: label, allowedByBinding: binding, requested: requested)
                == expected, "\(label ?? "nil") \(binding)")
        }
    }
}
