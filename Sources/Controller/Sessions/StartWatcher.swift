import Foundation

/// Waits, with a deadline, for a session's debug container to run, reading each pod snapshot (a poll or a watch
/// event), and decides: started, failed with the real reason, or keep waiting.
///
/// Waiting reasons that do not clear by themselves fail at once — a bad image (`ErrImagePull`,
/// `ImagePullBackOff`, `InvalidImageName`), a bad configuration (`CreateContainerConfigError`, e.g. a root
/// image under `runAsNonRoot`), `CreateContainerError`, `RunContainerError` — so the user hears the reason in
/// seconds rather than at the deadline. `ContainerCreating` and an empty waiting state are progress.
struct StartWatcher: Sendable, Equatable {
    /// What the watcher decided.
    enum Verdict: Sendable, Equatable {
        /// Not yet; `progress` says what the pod shows, for the UI.
        case waiting(progress: String)
        /// Running since `at`.
        case started(at: Date)
        /// It will not run; the reason for the session's `Failed` state.
        case failed(reason: String)
    }

    let containerName: String
    let podUID: String
    let deadline: Date
    /// The last progress seen, for the timeout's message.
    private(set) var lastProgress = "no status yet"

    /// Waiting reasons that end the wait at once.
    static let fatalWaitingReasons: Set<String> = [
        "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
        "CreateContainerError", "RunContainerError", "PreCreateHookError", "PostStartHookError",
    ]

    /// Watches `session`'s container until `deadline`.
    init(session: DebugSession, deadline: Date) {
        self.containerName = session.containerName
        self.podUID = session.podUID
        self.deadline = deadline
    }

    /// Reads one snapshot of the pod at `now`.
    mutating func observe(_ pod: PodSnapshot?, now: Date) -> Verdict {
        guard let pod else { return self.fail("the pod is gone") }
        guard pod.uid == self.podUID else { return self.fail("the pod was recreated (its UID changed)") }
        if pod.isDeleting { return self.fail("the pod is being deleted") }
        if pod.phase == "Succeeded" || pod.phase == "Failed" {
            return self.fail("the pod has ended (phase \(pod.phase))")
        }
        switch pod.status(ofEphemeralContainer: self.containerName) {
        case .absent:
            self.lastProgress = "the container is not in the pod yet"
        case .running(let startedAt):
            return .started(at: startedAt.map { min($0, now) } ?? now)
        case .terminated(let code, let reason, let message, _):
            var text = "the debug container exited with code \(code)"
            if let reason { text += " (\(reason))" }
            if let message = message?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty {
                text += ": \(message)"
            }
            return .failed(reason: text)
        case .waiting(let reason, let message):
            if let reason, Self.fatalWaitingReasons.contains(reason) {
                return .failed(reason: Self.explain(reason: reason, message: message))
            }
            self.lastProgress = [reason ?? "Waiting", message].compactMap { $0 }.joined(separator: ": ")
        }
        if now >= self.deadline { return self.timedOut() }
        return .waiting(progress: self.lastProgress)
    }

    /// The verdict at `now` without a new snapshot: failed once the deadline passed.
    func check(now: Date) -> Verdict {
        now >= self.deadline ? self.timedOut() : .waiting(progress: self.lastProgress)
    }

    private func timedOut() -> Verdict {
        .failed(reason: "the debug container did not start before the deadline (last seen: \(self.lastProgress))")
    }

    private func fail(_ reason: String) -> Verdict { .failed(reason: reason) }

    /// `ErrImagePull: <kubelet message>`, with a hint for a root image under `runAsNonRoot`.
    static func explain(reason: String, message: String?) -> String {
        var text = reason
        if let message = message?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty {
            text += ": \(message)"
        }
        if reason == "CreateContainerConfigError", message?.contains("runAsNonRoot") == true {
            text += " (the restricted profile needs an image that runs as a non-root user)"
        }
        return text
    }
}
