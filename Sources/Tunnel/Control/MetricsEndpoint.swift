import Foundation

/// The plain-HTTP operations endpoint: `/metrics` (Prometheus text), `/healthz` and `/readyz`.
package struct MetricsEndpoint: Sendable {
    private let registry: MetricsRegistry
    private let isReady: @Sendable () -> Bool
    private let notReadyReason: String

    /// An endpoint rendering `registry`; `/readyz` answers 200 while `isReady()` holds, else 503 with
    /// `notReadyReason`.
    package init(
        registry: MetricsRegistry = .shared, notReadyReason: String = "not ready",
        isReady: @escaping @Sendable () -> Bool
    ) {
        self.registry = registry
        self.isReady = isReady
        self.notReadyReason = notReadyReason
    }

    /// Answers one request; pass it as a `SimpleHTTPServer` handler.
    package func handle(_ request: SimpleRequest) -> SimpleResponse {
        let paths = ["/metrics", "/healthz", "/readyz"]
        guard paths.contains(request.path) else {
            return .error(404, "no such path \(request.path); try \(paths.joined(separator: ", "))")
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            var response = SimpleResponse.error(405, "\(request.path) accepts GET and HEAD, not \(request.method)")
            response.headers.add(name: "Allow", value: "GET, HEAD")
            return response
        }
        switch request.path {
        case "/metrics":
            return .text(200, self.registry.render(), contentType: MetricsRegistry.contentType)
        case "/healthz":
            return .text(200, "ok\n")
        default:
            return self.isReady() ? .text(200, "ready\n") : .text(503, "\(self.notReadyReason)\n")
        }
    }
}
