import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The current policy, re-read when its file changes: a changed fingerprint (inode, size, mtime) triggers a read,
/// a valid file replaces the policy, an invalid one is logged once and the last good policy stays.
final class PolicyStore: Sendable {
    /// What `reloadIfChanged()` did.
    enum ReloadOutcome: Sendable, Equatable {
        /// The file's fingerprint is the one already seen.
        case unchanged
        /// A new policy is in force.
        case reloaded
        /// The file changed but was refused; the previous policy stays.
        case refused(PolicyError)
    }

    private struct State {
        var policy: Policy
        /// The fingerprint of the file last read, good or refused, so a bad file is reported once.
        var fingerprint: String
        var lastError: PolicyError?
    }

    /// The policy file's path.
    let path: String
    private let fingerprintOf: @Sendable (String) -> String
    private let load: @Sendable (String) throws(PolicyError) -> Policy
    private let state: Mutex<State>
    private let timer: Mutex<(any DispatchSourceTimer)?> = Mutex(nil)

    /// Loads the policy at `path`; throws if this first read fails, since there is no good policy to keep.
    /// `fingerprint` and `load` are seams for tests.
    init(
        path: String,
        fingerprint: @escaping @Sendable (String) -> String = { FileFingerprint.of([$0]) },
        load: @escaping @Sendable (String) throws(PolicyError) -> Policy = { path throws(PolicyError) in
            try PolicyFile.load(path: path)
        }
    ) throws(PolicyError) {
        self.path = path
        self.fingerprintOf = fingerprint
        self.load = load
        let fingerprint = fingerprint(path)
        let policy = try load(path)
        self.state = Mutex(State(policy: policy, fingerprint: fingerprint, lastError: nil))
    }

    deinit {
        self.timer.withLock { $0?.cancel() }
    }

    /// The policy in force.
    var policy: Policy { self.state.withLock { $0.policy } }

    /// Why the file on disk is not the policy in force, if it was refused.
    var lastError: PolicyError? { self.state.withLock { $0.lastError } }

    /// Re-reads the file if its fingerprint changed; logs a reload or a refusal.
    @discardableResult
    func reloadIfChanged() -> ReloadOutcome {
        let fingerprint = self.fingerprintOf(self.path)
        guard fingerprint != self.state.withLock({ $0.fingerprint }) else { return .unchanged }
        // Read outside the lock; two concurrent reloads of the same file reach the same result.
        let outcome: ReloadOutcome
        do throws(PolicyError) {
            let policy = try self.load(self.path)
            self.state.withLock { $0 = State(policy: policy, fingerprint: fingerprint, lastError: nil) }
            outcome = .reloaded
            Log.info("policy reloaded", ["path": self.path, "roles": "\(policy.roles.count)",
                                         "bindings": "\(policy.bindings.count)"])
        } catch {
            self.state.withLock {
                $0.fingerprint = fingerprint
                $0.lastError = error
            }
            outcome = .refused(error)
            Log.warning("policy file refused, keeping the last good policy", ["path": self.path, "error": "\(error)"])
        }
        return outcome
    }

    /// Checks the file every `interval` seconds on a utility queue until the store is released.
    func checkPeriodically(every interval: Double) {
        self.timer.withLock { current in
            current?.cancel()
            let queue = DispatchQueue(label: "porthole.policy-store", qos: .utility)
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
            timer.setEventHandler { [weak self] in self?.reloadIfChanged() }
            timer.resume()
            current = timer
        }
    }
}
