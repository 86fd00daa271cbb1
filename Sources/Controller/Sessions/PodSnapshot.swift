import Foundation
import Tunnel

/// What a debug session needs from a pod: its UID, phase, containers, and the state of each ephemeral container.
/// Read from `GET …/pods/NAME` or from a watch event (`{"type": "MODIFIED", "object": {…}}`).
struct PodSnapshot: Sendable, Equatable {
    var namespace: String
    var name: String
    var uid: String
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`; empty when absent.
    var phase: String
    /// Names of the pod's regular containers (possible targets).
    var containers: [String]
    /// Names in `spec.ephemeralContainers`.
    var ephemeralContainers: [String]
    /// `status.ephemeralContainerStatuses` by container name.
    var ephemeralContainerStatuses: [String: ContainerStatus]
    /// Whether the pod is being deleted (`metadata.deletionTimestamp`).
    var isDeleting: Bool

    /// Parses a pod object, or a watch event carrying one; nil when the bytes are not a pod.
    static func parse(_ bytes: [UInt8]) -> PodSnapshot? {
        guard let json = JSONValue.parse(bytes)?.object else { return nil }
        let pod = (json["type"]?.string != nil ? json["object"]?.object : json) ?? json
        return self.parse(object: pod)
    }

    /// Parses a pod's JSON members.
    static func parse(object pod: [String: JSONValue]) -> PodSnapshot? {
        guard pod["kind"]?.string.map({ $0 == "Pod" }) ?? true,
              let metadata = pod["metadata"]?.object, let name = metadata["name"]?.string,
              let uid = metadata["uid"]?.string
        else { return nil }
        let spec = pod["spec"]?.object ?? [:]
        let status = pod["status"]?.object ?? [:]
        let names = { (key: String) in (spec[key]?.array ?? []).compactMap { $0.object?["name"]?.string } }
        var statuses: [String: ContainerStatus] = [:]
        for entry in status["ephemeralContainerStatuses"]?.array ?? [] {
            guard let object = entry.object, let name = object["name"]?.string else { continue }
            statuses[name] = ContainerStatus(object["state"]?.object ?? [:])
        }
        return PodSnapshot(
            namespace: metadata["namespace"]?.string ?? "", name: name, uid: uid, phase: status["phase"]?.string ?? "",
            containers: names("containers"), ephemeralContainers: names("ephemeralContainers"),
            ephemeralContainerStatuses: statuses, isDeleting: metadata["deletionTimestamp"]?.string != nil)
    }

    /// The state of one ephemeral container: absent from the spec, in the spec without a status yet, or its status.
    func status(ofEphemeralContainer name: String) -> ContainerStatus {
        if let status = self.ephemeralContainerStatuses[name] { return status }
        return self.ephemeralContainers.contains(name) ? .waiting(reason: nil, message: nil) : .absent
    }
}

/// A container's `state`, as the kubelet reports it.
enum ContainerStatus: Sendable, Equatable {
    /// Not in the pod's spec.
    case absent
    /// Not running yet: `ContainerCreating`, `ErrImagePull`, `ImagePullBackOff`, `CreateContainerConfigError`, …
    case waiting(reason: String?, message: String?)
    /// Running since `startedAt`.
    case running(startedAt: Date?)
    /// Ended.
    case terminated(exitCode: Int, reason: String?, message: String?, startedAt: Date?)

    /// Reads `{"waiting": {…}}`, `{"running": {…}}` or `{"terminated": {…}}`; an empty state is waiting.
    init(_ state: [String: JSONValue]) {
        if let running = state["running"]?.object {
            self = .running(startedAt: running["startedAt"]?.string.flatMap(DebugSessionCoding.date(from:)))
        } else if let terminated = state["terminated"]?.object {
            self = .terminated(
                exitCode: Int(terminated["exitCode"]?.number ?? 0), reason: terminated["reason"]?.string,
                message: terminated["message"]?.string,
                startedAt: terminated["startedAt"]?.string.flatMap(DebugSessionCoding.date(from:)))
        } else {
            let waiting = state["waiting"]?.object ?? [:]
            self = .waiting(reason: waiting["reason"]?.string, message: waiting["message"]?.string)
        }
    }
}

/// A Kubernetes `Status` object, the body of an API error (`{"kind": "Status", "status": "Failure", …}`).
struct KubernetesStatus: Sendable, Equatable {
    var code: Int
    /// `Forbidden`, `Invalid`, `Conflict`, `NotFound`, …
    var reason: String
    var message: String
    /// `details.causes[].message`.
    var causes: [String]

    /// Parses a Status body; nil when the bytes are not one.
    static func parse(_ bytes: [UInt8]) -> KubernetesStatus? {
        guard let json = JSONValue.parse(bytes)?.object, json["kind"]?.string == "Status" else { return nil }
        let causes = (json["details"]?.object?["causes"]?.array ?? []).compactMap { cause -> String? in
            guard let object = cause.object, let message = object["message"]?.string else { return nil }
            return object["field"]?.string.map { "\($0): \(message)" } ?? message
        }
        return KubernetesStatus(
            code: Int(json["code"]?.number ?? 0), reason: json["reason"]?.string ?? "",
            message: json["message"]?.string ?? "", causes: causes)
    }

    /// The reason to show for a failed patch: the message (which holds admission's text), else the Kubernetes
    /// reason and code.
    var failureText: String {
        if !self.message.isEmpty { return self.message }
        if !self.causes.isEmpty { return self.causes.joined(separator: "; ") }
        return "\(self.reason.isEmpty ? "error" : self.reason) (HTTP \(self.code))"
    }

    /// Why a dry run or patch answered with `status` and `body` failed, for the session's `Failed` reason:
    /// `the API server refused the debug container: pods "api-0" is forbidden: violates PodSecurity …`.
    static func failureReason(status: Int, body: [UInt8]) -> String {
        let text: String
        if let parsed = Self.parse(body) {
            text = parsed.failureText
        } else {
            let raw = String(decoding: body.prefix(512), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            text = raw.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(raw)"
        }
        return "the API server refused the debug container: \(text)"
    }
}
