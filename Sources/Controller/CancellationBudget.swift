import Tunnel

/// How many requests each user may cancel before their new requests are refused for a while.
///
/// Every cancellation crosses a tunnel as a reset that the agent and a backend must act on, and a tunnel carries
/// many users: the limit belongs to the user who cancels, never to the tunnel (whose HTTP/2 ends do not count
/// resets at all, see `TunnelProtocol.settings`).
final class CancellationBudget: Sendable {
    private let buckets: KeyedTokenBuckets
    private let metrics: ControllerMetrics

    init(buckets: KeyedTokenBuckets, metrics: ControllerMetrics) {
        self.buckets = buckets
        self.metrics = metrics
    }

    /// A request of `user`'s ended before its response did, by the user's doing.
    func charge(_ user: String) {
        self.buckets.charge(user)
    }

    /// Nil when `user` may open a request; else the seconds to wait, and the refusal is logged and counted.
    func refusal(for user: String) -> Int? {
        guard let wait = self.buckets.wait(for: user) else { return nil }
        self.metrics.authFailure(reason: "cancellation_budget")
        return wait
    }
}
