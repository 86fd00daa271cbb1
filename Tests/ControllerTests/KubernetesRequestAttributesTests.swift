import Testing

@testable import Controller

/// One row: a request and the attributes and operation the API server's parsing and our mapping give it.
struct AttributesCase: CustomTestStringConvertible, Sendable {
    var method: String
    var target: String
    var resource: Bool
    var verb: String
    var group = ""
    var version = ""
    var namespace = ""
    var resourceName = ""
    var subresource = ""
    var name = ""
    var operation: PolicyOperation
    var scope: String

    var testDescription: String { "\(self.method) \(self.target)" }
}

private func row(
    _ method: String, _ target: String, _ verb: String, group: String = "", version: String = "v1",
    namespace: String = "", resource: String, subresource: String = "", name: String = "",
    _ operation: PolicyOperation
) -> AttributesCase {
    AttributesCase(
        method: method, target: target, resource: true, verb: verb, group: group, version: version,
        namespace: namespace, resourceName: resource, subresource: subresource, name: name, operation: operation,
        scope: namespace.isEmpty ? "all" : namespace)
}

private func nonResource(_ method: String, _ target: String, _ operation: PolicyOperation) -> AttributesCase {
    AttributesCase(
        method: method, target: target, resource: false, verb: method.lowercased(), version: "",
        operation: operation, scope: "cluster")
}

@Suite struct KubernetesRequestAttributesTests {
    static let cases: [AttributesCase] = [
        // Core resources, namespaced and named.
        row("GET", "/api/v1/namespaces/payments/pods", "list", namespace: "payments", resource: "pods", .view),
        row("GET", "/api/v1/namespaces/payments/pods/api-0", "get", namespace: "payments", resource: "pods",
            name: "api-0", .view),
        row("HEAD", "/api/v1/namespaces/payments/pods/api-0", "get", namespace: "payments", resource: "pods",
            name: "api-0", .view),
        row("POST", "/api/v1/namespaces/payments/pods", "create", namespace: "payments", resource: "pods", .write),
        row("PUT", "/api/v1/namespaces/payments/pods/api-0", "update", namespace: "payments", resource: "pods",
            name: "api-0", .write),
        row("PATCH", "/api/v1/namespaces/payments/pods/api-0", "patch", namespace: "payments", resource: "pods",
            name: "api-0", .write),
        row("DELETE", "/api/v1/namespaces/payments/pods/api-0", "delete", namespace: "payments", resource: "pods",
            name: "api-0", .write),
        row("DELETE", "/api/v1/namespaces/payments/pods", "deletecollection", namespace: "payments",
            resource: "pods", .write),
        row("OPTIONS", "/api/v1/namespaces/payments/pods", "", namespace: "payments", resource: "pods", .write),
        row("GET", "/api/v1/namespaces/payments/events", "list", namespace: "payments", resource: "events", .view),
        row("GET", "/apis/events.k8s.io/v1/namespaces/payments/events", "list", group: "events.k8s.io",
            namespace: "payments", resource: "events", .view),
        row("GET", "/api/v1/namespaces/payments/secrets/db", "get", namespace: "payments", resource: "secrets",
            name: "db", .read),
        row("GET", "/api/v1/namespaces/payments/configmaps", "list", namespace: "payments", resource: "configmaps",
            .read),
        // Group resources.
        row("GET", "/apis/apps/v1/namespaces/payments/deployments", "list", group: "apps", namespace: "payments",
            resource: "deployments", .read),
        row("PATCH", "/apis/apps/v1/namespaces/payments/deployments/api/scale", "patch", group: "apps",
            namespace: "payments", resource: "deployments", subresource: "scale", name: "api", .write),
        row("GET", "/apis/apps/v1/namespaces/payments/deployments/api/status", "get", group: "apps",
            namespace: "payments", resource: "deployments", subresource: "status", name: "api", .read),
        row("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "list", group: "rbac.authorization.k8s.io",
            resource: "clusterroles", .read),
        // Cluster-scoped lists and namespaces themselves.
        row("GET", "/api/v1/pods", "list", resource: "pods", .view),
        row("GET", "/api/v1/namespaces", "list", resource: "namespaces", .view),
        row("POST", "/api/v1/namespaces", "create", resource: "namespaces", .write),
        row("GET", "/api/v1/namespaces/payments", "get", namespace: "payments", resource: "namespaces",
            name: "payments", .view),
        row("DELETE", "/api/v1/namespaces/payments", "delete", namespace: "payments", resource: "namespaces",
            name: "payments", .write),
        row("PUT", "/api/v1/namespaces/payments/finalize", "update", namespace: "payments", resource: "namespaces",
            subresource: "finalize", name: "payments", .write),
        row("GET", "/api/v1/namespaces/payments/status", "get", namespace: "payments", resource: "namespaces",
            subresource: "status", name: "payments", .view),
        row("GET", "/api/v1/nodes/node-1", "get", resource: "nodes", name: "node-1", .read),
        // Watch: query and the legacy prefix.
        row("GET", "/api/v1/namespaces/payments/pods?watch=true", "watch", namespace: "payments", resource: "pods",
            .view),
        row("GET", "/api/v1/namespaces/payments/pods?watch=1&resourceVersion=10", "watch", namespace: "payments",
            resource: "pods", .view),
        row("GET", "/api/v1/namespaces/payments/pods?watch=false", "list", namespace: "payments", resource: "pods",
            .view),
        row("GET", "/api/v1/namespaces/payments/pods?watch=0", "list", namespace: "payments", resource: "pods",
            .view),
        row("GET", "/api/v1/namespaces/payments/pods?watch=", "watch", namespace: "payments", resource: "pods",
            .view),
        row("GET", "/api/v1/pods?watch=true", "watch", resource: "pods", .view),
        row("GET", "/api/v1/namespaces/payments/pods/api-0?watch=true", "get", namespace: "payments",
            resource: "pods", name: "api-0", .view),
        row("GET", "/api/v1/watch/namespaces/payments/pods", "watch", namespace: "payments", resource: "pods",
            .view),
        row("GET", "/api/v1/watch/namespaces/payments/pods/api-0", "watch", namespace: "payments",
            resource: "pods", name: "api-0", .view),
        row("GET", "/apis/apps/v1/watch/deployments", "watch", group: "apps", resource: "deployments", .read),
        // A list narrowed to one name by a field selector names it.
        row("GET", "/api/v1/namespaces/payments/pods?fieldSelector=metadata.name%3Dapi-0&watch=1", "watch",
            namespace: "payments", resource: "pods", name: "api-0", .view),
        row("GET", "/api/v1/namespaces/payments/pods?fieldSelector=status.phase%3DRunning,metadata.name%3D%3Dapi-1",
            "list", namespace: "payments", resource: "pods", name: "api-1", .view),
        row("GET", "/api/v1/namespaces/payments/pods?fieldSelector=metadata.name!%3Dapi-0", "list",
            namespace: "payments", resource: "pods", .view),
        row("GET", "/api/v1/namespaces/payments/pods?fieldSelector=metadata.name%3Dapi-0&limit=x", "list",
            namespace: "payments", resource: "pods", .view),
        row("DELETE", "/api/v1/namespaces/payments/pods?fieldSelector=metadata.name%3Dapi-0", "deletecollection",
            namespace: "payments", resource: "pods", .write),
        // Pod subresources.
        row("GET", "/api/v1/namespaces/payments/pods/api-0/log?container=app&follow=true", "get",
            namespace: "payments", resource: "pods", subresource: "log", name: "api-0", .logs),
        row("POST", "/api/v1/namespaces/payments/pods/api-0/exec?command=sh&stdin=true&tty=true", "create",
            namespace: "payments", resource: "pods", subresource: "exec", name: "api-0", .exec),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/exec?command=sh", "get", namespace: "payments",
            resource: "pods", subresource: "exec", name: "api-0", .exec),
        row("POST", "/api/v1/namespaces/payments/pods/api-0/attach?container=debugger", "create",
            namespace: "payments", resource: "pods", subresource: "attach", name: "api-0", .attach),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/attach", "get", namespace: "payments",
            resource: "pods", subresource: "attach", name: "api-0", .attach),
        row("POST", "/api/v1/namespaces/payments/pods/api-0/portforward", "create", namespace: "payments",
            resource: "pods", subresource: "portforward", name: "api-0", .portforward),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/portforward?ports=8080", "get", namespace: "payments",
            resource: "pods", subresource: "portforward", name: "api-0", .portforward),
        row("PATCH", "/api/v1/namespaces/payments/pods/api-0/ephemeralcontainers", "patch", namespace: "payments",
            resource: "pods", subresource: "ephemeralcontainers", name: "api-0", .debug),
        row("PUT", "/api/v1/namespaces/payments/pods/api-0/ephemeralcontainers", "update", namespace: "payments",
            resource: "pods", subresource: "ephemeralcontainers", name: "api-0", .debug),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/ephemeralcontainers", "get", namespace: "payments",
            resource: "pods", subresource: "ephemeralcontainers", name: "api-0", .view),
        row("POST", "/api/v1/namespaces/payments/pods/api-0/eviction", "create", namespace: "payments",
            resource: "pods", subresource: "eviction", name: "api-0", .write),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/proxy/metrics", "get", namespace: "payments",
            resource: "pods", subresource: "proxy", name: "api-0", .write),
        row("GET", "/api/v1/namespaces/payments/pods/api-0/status", "get", namespace: "payments",
            resource: "pods", subresource: "status", name: "api-0", .view),
        // The legacy proxy verb takes no subresource.
        row("GET", "/api/v1/proxy/namespaces/payments/pods/api-0/metrics", "proxy", namespace: "payments",
            resource: "pods", name: "api-0", .write),
        // Percent escapes are decoded before splitting, as Go's URL.Path is.
        row("GET", "/api/v1/namespaces/pay%6Dents/pods", "list", namespace: "payments", resource: "pods", .view),
        // Non-resource paths.
        nonResource("GET", "/api", .view),
        nonResource("GET", "/api/v1", .view),
        nonResource("GET", "/apis", .view),
        nonResource("GET", "/apis/apps", .view),
        nonResource("GET", "/apis/apps/v1", .view),
        nonResource("GET", "/version", .view),
        nonResource("GET", "/version/", .view),
        nonResource("GET", "/openapi/v2", .view),
        nonResource("GET", "/openapi/v3/apis/apps/v1?hash=abc", .view),
        nonResource("GET", "/healthz", .view),
        nonResource("GET", "/readyz/etcd", .view),
        nonResource("HEAD", "/livez", .view),
        nonResource("GET", "/", .read),
        nonResource("GET", "/metrics", .read),
        nonResource("GET", "/logs/kube-apiserver.log", .read),
        nonResource("GET", "/versionx", .read),
        nonResource("POST", "/api/v1", .write),
        nonResource("GET", "/foo/bar/baz", .read),
    ]

    @Test(arguments: Self.cases)
    func parses(_ expected: AttributesCase) throws {
        let (path, query) = Self.split(expected.target)
        let attributes = try KubernetesRequestAttributes(method: expected.method, path: path, query: query)
        #expect(attributes.isResourceRequest == expected.resource)
        #expect(attributes.verb == expected.verb)
        #expect(attributes.apiPrefix == (expected.resource ? (expected.group.isEmpty ? "api" : "apis") : ""))
        #expect(attributes.apiGroup == expected.group)
        #expect(attributes.apiVersion == expected.version)
        #expect(attributes.namespace == expected.namespace)
        #expect(attributes.resource == expected.resourceName)
        #expect(attributes.subresource == expected.subresource)
        #expect(attributes.name == expected.name)
        #expect(attributes.operation == expected.operation)
        let scope = attributes.scope(namespaceLabels: nil)
        switch expected.scope {
        case "cluster": #expect(scope == .cluster)
        case "all": #expect(scope == .allNamespaces)
        default: #expect(scope == .namespace(expected.scope, labels: nil))
        }
    }

    @Test func keepsThePathPartsFromTheResourceOn() throws {
        let attributes = try KubernetesRequestAttributes(
            method: "GET", path: "/api/v1/namespaces/payments/pods/api-0/proxy/a/b", query: nil)
        #expect(attributes.parts == ["pods", "api-0", "proxy", "a", "b"])
        #expect(attributes.path == "/api/v1/namespaces/payments/pods/api-0/proxy/a/b")
    }

    @Test(arguments: ["/api/v1/watch", "/apis/apps/v1/proxy", "/api/v1/namespaces/a%2/pods", "/api/v1/%zz/x"])
    func refusesWhatTheAPIServerCannotParse(_ path: String) {
        #expect(throws: KubernetesRequestAttributes.ParseError.self) {
            try KubernetesRequestAttributes(method: "GET", path: path, query: nil)
        }
    }

    @Test func readsQueriesAsGoDoes() {
        let values = KubernetesRequestAttributes.queryValues("a=1&a=2&b=x+y%21&c&bad=%zz&semi=1;2&=e")
        #expect(values["a"] == ["1", "2"])
        #expect(values["b"] == ["x y!"])
        #expect(values["c"] == [""])
        #expect(values["bad"] == nil)
        #expect(values["semi"] == nil)
        #expect(values[""] == ["e"])
    }

    @Test func parsesFieldSelectorsAsKubernetesDoes() {
        typealias Term = KubernetesRequestAttributes.FieldSelectorTerm
        #expect(KubernetesRequestAttributes.parseFieldSelector("") == [])
        #expect(
            KubernetesRequestAttributes.parseFieldSelector("a=b,,c!=d")
                == [Term(field: "a", isEquality: true, value: "b"), Term(field: "c", isEquality: false, value: "d")])
        #expect(
            KubernetesRequestAttributes.parseFieldSelector(#"metadata.name=a\,b"#)
                == [Term(field: "metadata.name", isEquality: true, value: "a,b")])
        #expect(KubernetesRequestAttributes.parseFieldSelector("novalue") == nil)
        #expect(KubernetesRequestAttributes.parseFieldSelector("a=b=c") == nil)
        #expect(KubernetesRequestAttributes.parseFieldSelector(#"a=b\"#) == nil)
    }

    @Test func aSelectedNameThatIsNotAPathSegmentIsIgnored() throws {
        let attributes = try KubernetesRequestAttributes(
            method: "GET", path: "/api/v1/namespaces/p/pods", query: "fieldSelector=metadata.name%3D..")
        #expect(attributes.name == "")
        #expect(attributes.verb == "list")
    }

    @Test func theRequestBecomesAPolicyQuestion() throws {
        let subject = PolicySubject(username: "alice", groups: ["dev"])
        let attributes = try KubernetesRequestAttributes(
            method: "POST", path: "/api/v1/namespaces/payments/pods/api-0/exec", query: "command=sh")
        let request = attributes.policyRequest(subject: subject, cluster: "prod-eu", namespaceLabels: ["team": "p"])
        #expect(
            request
                == PolicyRequest(
                    subject: subject, cluster: "prod-eu", scope: .namespace("payments", labels: ["team": "p"]),
                    operation: .exec))
    }

    private static func split(_ target: String) -> (String, String?) {
        guard let mark = target.firstIndex(of: "?") else { return (target, nil) }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }
}
