import Foundation

/// The request that adds a session's debug container: a strategic merge patch of
/// `pods/NAME/ephemeralcontainers`, bound to the pod's UID.
///
/// `ephemeralContainers` merges by `name`, so the patch adds one container and leaves the others. `metadata.uid`
/// makes the API server refuse the patch when the pod was recreated under the same name (the UID is immutable:
/// 409 `Precondition failed: UID in precondition` or 422 `field is immutable`). Send it first with `dryRun: true`
/// so admission (PodSecurity) refuses before a permanent container is added.
struct EphemeralContainerPatch: Sendable, Equatable {
    var method: String
    /// `/api/v1/namespaces/NS/pods/NAME/ephemeralcontainers` (and `?dryRun=All`).
    var path: String
    var contentType: String
    var body: [UInt8]

    static let contentType = "application/strategic-merge-patch+json"

    /// The patch for `session`; `dryRun` asks the API server to check (admission included) without saving.
    static func make(for session: DebugSession, dryRun: Bool = false) -> EphemeralContainerPatch {
        let container = EphemeralContainerSpec(
            name: session.containerName, image: session.image, command: session.command, stdin: true, tty: true,
            targetContainerName: session.targetContainer, securityContext: SecurityContextSpec(session.profile),
            terminationMessagePolicy: "FallbackToLogsOnError")
        let patch = PatchBody(metadata: .init(uid: session.podUID), spec: .init(ephemeralContainers: [container]))
        var path = "/api/v1/namespaces/\(session.namespace)/pods/\(session.pod)/ephemeralcontainers"
        if dryRun { path += "?dryRun=All" }
        return EphemeralContainerPatch(
            method: "PATCH", path: path, contentType: Self.contentType, body: DebugSessionCoding.encode(patch))
    }

    /// The headers to send with the body.
    var headers: [(String, String)] {
        [("content-type", self.contentType), ("accept", "application/json")]
    }

    private struct PatchBody: Encodable {
        struct Metadata: Encodable { var uid: String }
        struct Spec: Encodable { var ephemeralContainers: [EphemeralContainerSpec] }
        var metadata: Metadata
        var spec: Spec
    }
}

/// One entry of `spec.ephemeralContainers`, as Porthole writes it.
struct EphemeralContainerSpec: Sendable, Equatable, Encodable {
    var name: String
    var image: String
    var command: [String]?
    var stdin: Bool
    var tty: Bool
    var targetContainerName: String?
    var securityContext: SecurityContextSpec
    var terminationMessagePolicy: String
}

/// A container `securityContext` for each profile.
///
/// - `restricted` passes the Pod Security Standards' restricted level: `runAsNonRoot`, no privilege escalation,
///   every capability dropped, the runtime's default seccomp profile. An image that runs as root fails to start
///   with `CreateContainerConfigError` (`container has runAsNonRoot and image will run as root`).
/// - `baseline` passes the baseline level: not privileged, no privilege escalation, no capability added (the
///   runtime's defaults are all within baseline's allowed set); root is allowed.
/// - `privileged`: a privileged container (every capability, host devices); only namespaces at `privileged`.
struct SecurityContextSpec: Sendable, Equatable, Encodable {
    struct Capabilities: Sendable, Equatable, Encodable { var drop: [String] }
    struct SeccompProfile: Sendable, Equatable, Encodable { var type: String }

    var privileged: Bool?
    var runAsNonRoot: Bool?
    var allowPrivilegeEscalation: Bool?
    var capabilities: Capabilities?
    var seccompProfile: SeccompProfile?

    init(_ profile: SecurityProfile) {
        switch profile {
        case .restricted:
            self.runAsNonRoot = true
            self.allowPrivilegeEscalation = false
            self.capabilities = Capabilities(drop: ["ALL"])
            self.seccompProfile = SeccompProfile(type: "RuntimeDefault")
        case .baseline:
            self.privileged = false
            self.allowPrivilegeEscalation = false
        case .privileged:
            self.privileged = true
        }
    }
}

/// How the debug process is ended when a session ends: ephemeral containers cannot be removed, their processes can.
///
/// The controller execs, in the debug container, a shell script that signals every process sharing the debug
/// container's mount namespace (`/proc/PID/ns/mnt` equal to its own) other than itself: SIGHUP, then SIGKILL two
/// seconds later. The mount namespace is the container's own even when it shares a target's process namespace,
/// so the target's processes are never touched (PID 1 there is the target's). In a container with its own process
/// namespace the shell is PID 1, which the kernel shields from signals it does not handle from inside; shells
/// that handle SIGHUP (bash) exit, others stay idle with no terminal, and no one can attach to them through
/// Porthole. An image without `sh` cannot be reached this way: the exec fails and the audit line says so.
enum DebugProcessTermination {
    /// The script: the processes of this container's mount namespace, except this shell, get HUP then KILL.
    static let script = """
        self=$$; mine=$(readlink /proc/self/ns/mnt); \
        for sig in HUP KILL; do for p in /proc/[0-9]*; do pid=${p#/proc/}; [ "$pid" = "$self" ] && continue; \
        [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$mine" ] && kill -$sig $pid 2>/dev/null; done; \
        [ $sig = HUP ] && sleep 2; done; true
        """

    /// The command the exec runs.
    static let command = ["sh", "-c", script]

    /// `POST /api/v1/namespaces/NS/pods/NAME/exec?container=…&command=sh&command=-c&command=…&stdout=true`
    /// (upgraded to a WebSocket or SPDY stream as `kubectl exec` does).
    static func execPath(for container: DebugContainerReference) -> String {
        var query = "container=\(Self.percentEncoded(container.container))"
        for argument in self.command { query += "&command=\(Self.percentEncoded(argument))" }
        query += "&stdout=true&stderr=true"
        return "/api/v1/namespaces/\(container.namespace)/pods/\(container.pod)/exec?\(query)"
    }

    private static func percentEncoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
