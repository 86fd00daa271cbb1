import Foundation
import Testing

@testable import Controller

@Suite struct EphemeralContainerPatchTests {
    private func session(profile: SecurityProfile, command: [String]? = nil, target: String? = "api") -> DebugSession {
        var validated = SessionFixture.validated()
        validated.profile = profile
        validated.command = command
        validated.targetContainer = target
        return DebugSessionStateMachine.create(
            validated, owner: SessionFixture.alice, podUID: "5f0c-uid", id: "abc123", now: SessionFixture.now).0.session
    }

    @Test func restrictedPatchIsExact() {
        let patch = EphemeralContainerPatch.make(for: self.session(profile: .restricted, command: ["sh"]))
        #expect(patch.method == "PATCH")
        #expect(patch.path == "/api/v1/namespaces/payments/pods/api-0/ephemeralcontainers")
        #expect(patch.contentType == "application/strategic-merge-patch+json")
        let expected = #"{"metadata":{"uid":"5f0c-uid"},"spec":{"ephemeralContainers":[{"command":["sh"],"#
            + #""image":"nicolaka/netshoot:v0.13","name":"porthole-abc123","securityContext":"#
            + #"{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsNonRoot":true,"#
            + #""seccompProfile":{"type":"RuntimeDefault"}},"stdin":true,"targetContainerName":"api","#
            + #""terminationMessagePolicy":"FallbackToLogsOnError","tty":true}]}}"#
        #expect(String(decoding: patch.body, as: UTF8.self) == expected)
    }

    @Test func dryRunAndOtherProfiles() {
        let dry = EphemeralContainerPatch.make(for: self.session(profile: .baseline, target: nil), dryRun: true)
        #expect(dry.path.hasSuffix("/ephemeralcontainers?dryRun=All"))
        let text = String(decoding: dry.body, as: UTF8.self)
        #expect(text.contains(#""securityContext":{"allowPrivilegeEscalation":false,"privileged":false}"#))
        #expect(!text.contains("targetContainerName"))
        #expect(!text.contains("command"))
        let privileged = EphemeralContainerPatch.make(for: self.session(profile: .privileged))
        #expect(String(decoding: privileged.body, as: UTF8.self).contains(#""securityContext":{"privileged":true}"#))
    }

    @Test func terminationExecsInTheDebugContainer() {
        let path = DebugProcessTermination.execPath(for: self.session(profile: .restricted).container)
        #expect(path.hasPrefix("/api/v1/namespaces/payments/pods/api-0/exec?container=porthole-abc123&command=sh"
            + "&command=-c&command="))
        #expect(path.hasSuffix("&stdout=true&stderr=true"))
        #expect(!path.contains(" "))
        #expect(DebugProcessTermination.script.contains("ns/mnt"))
    }
}
