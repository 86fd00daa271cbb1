/// How Kubernetes request attributes become a policy question: which Porthole operation, in which scope.
extension KubernetesRequestAttributes {
    /// Verbs that only read.
    static let readVerbs: Set<String> = ["get", "list", "watch"]

    /// Non-resource paths that only describe the API or its health: reading them is `view`.
    static let discoveryPaths = ["/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz",
                                 "/.well-known/openid-configuration", "/openid/v1/jwks"]

    /// The operation a policy must grant for this request:
    ///
    /// - `logs`, `exec`, `attach`, `portforward`: the pod subresources of those names, whatever the verb (kubectl
    ///   uses POST, or GET for a WebSocket upgrade).
    /// - `debug`: `patch` or `update` of `pods/ephemeralcontainers`.
    /// - `view`: reading pods (and their `status` and `ephemeralcontainers`), namespaces, events (core and
    ///   `events.k8s.io`), and reading discovery and health paths.
    /// - `write`: the `proxy` verb and any `proxy` subresource (they reach workloads' own HTTP servers), and every
    ///   verb that is not get, list or watch.
    /// - `read`: every other get, list and watch, including non-resource paths such as `/metrics` and `/logs`.
    var operation: PolicyOperation {
        guard self.isResourceRequest else {
            guard self.verb == "get" || self.verb == "head" else { return .write }
            let isDiscovery = Self.discoveryPaths.contains { self.path == $0 || self.path.hasPrefix($0 + "/") }
            return isDiscovery ? .view : .read
        }
        let isCore = self.apiGroup.isEmpty
        if isCore, self.resource == "pods" {
            switch self.subresource {
            case "log": return .logs
            case "exec": return .exec
            case "attach": return .attach
            case "portforward": return .portforward
            case "ephemeralcontainers" where self.verb == "patch" || self.verb == "update": return .debug
            default: break
            }
        }
        if self.verb == "proxy" || self.subresource == "proxy" { return .write }
        guard Self.readVerbs.contains(self.verb) else { return .write }
        let isViewed: Bool
        switch (self.apiGroup, self.resource, self.subresource) {
        case ("", "pods", ""), ("", "pods", "status"), ("", "pods", "ephemeralcontainers"): isViewed = true
        case ("", "namespaces", ""), ("", "namespaces", "status"): isViewed = true
        case ("", "events", ""), ("events.k8s.io", "events", ""): isViewed = true
        default: isViewed = false
        }
        return isViewed ? .view : .read
    }

    /// Where the request reaches: its namespace (with `labels` when known), every namespace for cluster-scoped
    /// resources and lists across namespaces, or the cluster's non-resource paths.
    func scope(namespaceLabels labels: [String: String]?) -> PolicyScope {
        guard self.isResourceRequest else { return .cluster }
        return self.namespace.isEmpty ? .allNamespaces : .namespace(self.namespace, labels: labels)
    }

    /// The policy question for `subject` sending this request to `cluster`.
    func policyRequest(subject: PolicySubject, cluster: String, namespaceLabels: [String: String]?) -> PolicyRequest {
        PolicyRequest(
            subject: subject, cluster: cluster, scope: self.scope(namespaceLabels: namespaceLabels),
            operation: self.operation)
    }
}
