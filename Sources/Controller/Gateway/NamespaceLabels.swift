import Dispatch
import Foundation
import Synchronization
import Tunnel

/// The labels of a cluster's namespaces, for bindings with a `namespaceSelector`: read from the cluster itself
/// (`GET /api/v1/namespaces/NAME` through the agent's tunnel, with the agent's credentials) and remembered for
/// `freshness` seconds.
///
/// `labels(…)` blocks its caller for at most `timeout`: call it only where a decision may wait (the pipeline's
/// worker queue), never on a connection's queue. A namespace that cannot be read has unknown labels, which no
/// selector matches (the decision then names what is missing).
final class NamespaceLabels: Sendable {
    private let freshness: TimeInterval
    private let timeout: TimeInterval
    private let cache = Mutex<[String: (labels: [String: String]?, readAt: Date)]>([:])
    private static let queue = DispatchQueue(label: "porthole.gateway.namespace-labels")

    init(freshness: TimeInterval = 30, timeout: TimeInterval = 3) {
        self.freshness = freshness
        self.timeout = timeout
    }

    func labels(cluster: String, service: String, namespace: String, sessions: any SessionDirectory,
                now: Date = Date()) -> [String: String]? {
        let key = "\(cluster)/\(service)/\(namespace)"
        if let hit = self.cache.withLock({ $0[key] }), now.timeIntervalSince(hit.readAt) < self.freshness {
            return hit.labels
        }
        let done = DispatchSemaphore(value: 0)
        let answer = Mutex<[String: String]?>(nil)
        TunnelClient.collect({ handler in
            TunnelClient.open(agent: cluster, serviceType: "kubernetes", serviceName: service,
                              path: "/api/v1/namespaces/\(namespace)",
                              headers: [HTTPField("accept", "application/json")], user: "controller:policy",
                              sessions: sessions, queue: Self.queue, handler: handler)
        }, limit: 1 << 20, timeout: self.timeout, queue: Self.queue) { result in
            if case .success(let response) = result, response.status == 200 {
                answer.withLock { $0 = Self.parse(response.body) }
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + self.timeout + 0.5)
        let labels = answer.withLock { $0 }
        self.cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[key] = (labels, now)
        }
        return labels
    }

    /// `metadata.labels` of a Namespace object (empty when it has none); nil for anything else.
    static func parse(_ body: [UInt8]) -> [String: String]? {
        guard let object = JSONValue.parse(body)?.object, object["kind"]?.string == "Namespace",
              let metadata = object["metadata"]?.object else { return nil }
        var labels: [String: String] = [:]
        for (key, value) in metadata["labels"]?.object ?? [:] {
            if let text = value.string { labels[key] = text }
        }
        return labels
    }
}
