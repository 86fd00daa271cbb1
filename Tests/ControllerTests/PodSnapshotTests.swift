import Foundation
import Testing

@testable import Controller

/// A pod with `porthole-abc123` in the given `state` JSON (nil: in the spec, no status yet).
private func pod(state: String?, uid: String = "uid-1", phase: String = "Running", watch: Bool = false) -> [UInt8] {
    let statuses = state.map { #","ephemeralContainerStatuses":[{"name":"porthole-abc123","state":\#($0)}]"# } ?? ""
    let object = #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"api-0","namespace":"payments","uid":"\#(uid)"},"#
        + #""spec":{"containers":[{"name":"api"},{"name":"sidecar"}],"#
        + #""ephemeralContainers":[{"name":"porthole-abc123","image":"x"}]},"#
        + #""status":{"phase":"\#(phase)"\#(statuses)}}"#
    return Array((watch ? #"{"type":"MODIFIED","object":\#(object)}"# : object).utf8)
}

private let now = SessionFixture.now

@Suite struct PodSnapshotTests {
    @Test func parsesPodsAndWatchEvents() throws {
        let snapshot = try #require(PodSnapshot.parse(pod(state: nil, watch: true)))
        #expect(snapshot.uid == "uid-1")
        #expect(snapshot.containers == ["api", "sidecar"])
        #expect(snapshot.status(ofEphemeralContainer: "porthole-abc123") == .waiting(reason: nil, message: nil))
        #expect(snapshot.status(ofEphemeralContainer: "porthole-other") == .absent)
        #expect(PodSnapshot.parse(Array("{}".utf8)) == nil)
        #expect(PodSnapshot.parse(Array("not json".utf8)) == nil)
    }

    @Test func statuses() throws {
        let running = try #require(PodSnapshot.parse(pod(state: #"{"running":{"startedAt":"2025-06-15T15:06:50Z"}}"#)))
        #expect(running.status(ofEphemeralContainer: "porthole-abc123") == .running(startedAt: now + 10))
        let terminated = try #require(PodSnapshot.parse(
            pod(state: #"{"terminated":{"exitCode":127,"reason":"Error","message":"sh: not found"}}"#)))
        #expect(terminated.status(ofEphemeralContainer: "porthole-abc123")
            == .terminated(exitCode: 127, reason: "Error", message: "sh: not found", startedAt: nil))
    }

    @Test func watcherStartsOnRunning() throws {
        let session = SessionFixture.active().session
        var watcher = StartWatcher(session: session, deadline: now + 60)
        let creating = PodSnapshot.parse(pod(state: #"{"waiting":{"reason":"ContainerCreating"}}"#))
        #expect(watcher.observe(creating, now: now + 1) == .waiting(progress: "ContainerCreating"))
        let running = PodSnapshot.parse(pod(state: #"{"running":{"startedAt":"2025-06-15T15:06:42Z"}}"#))
        #expect(watcher.observe(running, now: now + 3) == .started(at: now + 2))
    }

    @Test func watcherFailsWithTheRealReason() {
        let session = SessionFixture.active().session
        let cases: [(String, String)] = [
            (#"{"waiting":{"reason":"ErrImagePull","message":"rpc error: pull access denied for nope"}}"#,
             "ErrImagePull: rpc error: pull access denied for nope"),
            (#"{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"nope\""}}"#,
             "ImagePullBackOff: Back-off pulling image \"nope\""),
            (#"{"waiting":{"reason":"CreateContainerConfigError","message":"container has runAsNonRoot and image will "#
                + #"run as root (pod: \"api-0_payments(uid-1)\", container: porthole-abc123)"}}"#,
             "CreateContainerConfigError: container has runAsNonRoot and image will run as root (pod: "
                + "\"api-0_payments(uid-1)\", container: porthole-abc123) (the restricted profile needs an image "
                + "that runs as a non-root user)"),
            (#"{"terminated":{"exitCode":1,"reason":"Error"}}"#, "the debug container exited with code 1 (Error)"),
        ]
        for (state, reason) in cases {
            var watcher = StartWatcher(session: session, deadline: now + 60)
            #expect(watcher.observe(PodSnapshot.parse(pod(state: state)), now: now) == .failed(reason: reason))
        }
        var watcher = StartWatcher(session: session, deadline: now + 60)
        #expect(watcher.observe(PodSnapshot.parse(pod(state: nil, uid: "uid-2")), now: now)
            == .failed(reason: "the pod was recreated (its UID changed)"))
        #expect(watcher.observe(nil, now: now) == .failed(reason: "the pod is gone"))
        #expect(watcher.observe(PodSnapshot.parse(pod(state: nil, phase: "Succeeded")), now: now)
            == .failed(reason: "the pod has ended (phase Succeeded)"))
    }

    @Test func watcherTimesOut() {
        var watcher = StartWatcher(session: SessionFixture.active().session, deadline: now + 60)
        _ = watcher.observe(PodSnapshot.parse(pod(state: #"{"waiting":{"reason":"ContainerCreating"}}"#)), now: now)
        #expect(watcher.check(now: now + 59) == .waiting(progress: "ContainerCreating"))
        #expect(watcher.check(now: now + 60) == .failed(
            reason: "the debug container did not start before the deadline (last seen: ContainerCreating)"))
    }

    @Test func kubernetesStatus() throws {
        let body = #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"api-0\" is forbidden: "#
            + #"violates PodSecurity \"restricted:latest\": privileged (container \"porthole-abc123\" must not set "#
            + #"securityContext.privileged=true)","reason":"Forbidden","details":{"name":"api-0","kind":"pods"},"#
            + #""code":403}"#
        let status = try #require(KubernetesStatus.parse(Array(body.utf8)))
        #expect(status.code == 403)
        #expect(status.reason == "Forbidden")
        #expect(KubernetesStatus.failureReason(status: 403, body: Array(body.utf8))
            == "the API server refused the debug container: pods \"api-0\" is forbidden: violates PodSecurity "
                + "\"restricted:latest\": privileged (container \"porthole-abc123\" must not set "
                + "securityContext.privileged=true)")
        let invalid = #"{"kind":"Status","reason":"Invalid","code":422,"details":{"causes":[{"field":"metadata.uid","#
            + #""message":"field is immutable"}]}}"#
        #expect(KubernetesStatus.parse(Array(invalid.utf8))?.failureText == "metadata.uid: field is immutable")
        #expect(KubernetesStatus.failureReason(status: 502, body: Array("bad gateway".utf8))
            == "the API server refused the debug container: HTTP 502: bad gateway")
        #expect(KubernetesStatus.parse(Array(#"{"kind":"Pod"}"#.utf8)) == nil)
    }
}
