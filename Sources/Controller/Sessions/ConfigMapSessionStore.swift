import Foundation
import Tunnel

/// Sessions kept in the target cluster itself: one ConfigMap per session in the agent's namespace, written
/// through the tunnel, so that every controller replica sees the same sessions and a restart loses none.
///
///     apiVersion: v1
///     kind: ConfigMap
///     metadata:
///       name: porthole-session-<id>
///       namespace: <the agent's namespace>
///       labels:
///         app.kubernetes.io/managed-by: porthole
///         app.kubernetes.io/component: debug-session
///         porthole.dev/session-state: Active
///       resourceVersion: "…"          # optimistic concurrency: an update with a stale one gets 409
///     data:
///       session.json: '{"id": "…", "state": "Active", "deadline": "…", …}'
///
/// The request builders are pure functions over JSON; `send` goes through the injected transport. The agent's
/// service account needs `get, list, watch, create, update, delete` on `configmaps` in its namespace.
struct ConfigMapSessionStore: SessionStore {
    /// The namespace the ConfigMaps live in (the agent's).
    var namespace: String
    var transport: any KubernetesTransport

    static let namePrefix = "porthole-session-"
    static let dataKey = "session.json"
    static let managedByLabel = "app.kubernetes.io/managed-by"
    static let componentLabel = "app.kubernetes.io/component"
    static let stateLabel = "porthole.dev/session-state"
    /// Selects exactly the session ConfigMaps.
    static let labelSelector = "app.kubernetes.io/managed-by=porthole,app.kubernetes.io/component=debug-session"

    init(namespace: String, transport: any KubernetesTransport) {
        self.namespace = namespace
        self.transport = transport
    }

    // MARK: - Requests

    /// `porthole-session-<id>`.
    static func configMapName(id: String) -> String { Self.namePrefix + id }

    private var collectionPath: String { "/api/v1/namespaces/\(self.namespace)/configmaps" }

    /// `POST …/configmaps` with the session's ConfigMap; 409 `AlreadyExists` when the id is taken.
    func createRequest(for session: DebugSession) -> KubernetesRequest {
        KubernetesRequest(
            method: "POST", path: self.collectionPath, headers: Self.jsonHeaders,
            body: DebugSessionCoding.encode(self.configMap(for: session, resourceVersion: nil)))
    }

    /// `PUT …/configmaps/NAME` carrying `session.storeVersion` as `metadata.resourceVersion`: the API server
    /// refuses it with 409 `Conflict` when the ConfigMap changed since.
    func updateRequest(for session: DebugSession) -> KubernetesRequest {
        precondition(session.storeVersion != nil, "an update needs the stored version")
        return KubernetesRequest(
            method: "PUT", path: "\(self.collectionPath)/\(Self.configMapName(id: session.id))",
            headers: Self.jsonHeaders,
            body: DebugSessionCoding.encode(self.configMap(for: session, resourceVersion: session.storeVersion)))
    }

    /// `GET …/configmaps?labelSelector=…`: every session ConfigMap of the namespace.
    func listRequest() -> KubernetesRequest {
        let selector = Self.labelSelector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return KubernetesRequest(
            method: "GET", path: "\(self.collectionPath)?labelSelector=\(selector)",
            headers: ["accept": "application/json"], body: nil)
    }

    /// `GET …/configmaps/NAME`.
    func getRequest(id: String) -> KubernetesRequest {
        KubernetesRequest(
            method: "GET", path: "\(self.collectionPath)/\(Self.configMapName(id: id))",
            headers: ["accept": "application/json"], body: nil)
    }

    /// `DELETE …/configmaps/NAME`, with a resourceVersion precondition when `version` is given.
    func deleteRequest(id: String, version: String?) -> KubernetesRequest {
        var body: [UInt8]?
        if let version {
            body = DebugSessionCoding.encode(DeleteOptions(preconditions: .init(resourceVersion: version)))
        }
        return KubernetesRequest(
            method: "DELETE", path: "\(self.collectionPath)/\(Self.configMapName(id: id))",
            headers: Self.jsonHeaders, body: body)
    }

    private static let jsonHeaders = ["content-type": "application/json", "accept": "application/json"]

    /// The ConfigMap object for `session`.
    func configMap(for session: DebugSession, resourceVersion: String?) -> ConfigMapObject {
        ConfigMapObject(
            metadata: .init(
                name: Self.configMapName(id: session.id), namespace: self.namespace,
                labels: [Self.managedByLabel: "porthole", Self.componentLabel: "debug-session",
                         Self.stateLabel: session.state.rawValue],
                resourceVersion: resourceVersion),
            data: [Self.dataKey: String(decoding: DebugSessionCoding.encode(session), as: UTF8.self)])
    }

    // MARK: - Responses

    /// The session held by a ConfigMap object, with its `resourceVersion` as `storeVersion`.
    static func session(fromConfigMap object: [String: JSONValue]) throws(SessionStoreError) -> DebugSession {
        let name = object["metadata"]?.object?["name"]?.string ?? "?"
        guard let text = object["data"]?.object?[Self.dataKey]?.string else {
            throw SessionStoreError(.invalidResponse, "ConfigMap \(name) has no \(Self.dataKey)")
        }
        var session: DebugSession
        do {
            session = try DebugSessionCoding.decode(DebugSession.self, from: Array(text.utf8))
        } catch {
            throw SessionStoreError(.invalidResponse, "ConfigMap \(name): \(Self.dataKey) is not a session: \(error)")
        }
        session.storeVersion = object["metadata"]?.object?["resourceVersion"]?.string
        return session
    }

    /// The sessions of a `ConfigMapList`; ConfigMaps that do not hold a session are reported, not fatal.
    static func sessions(fromList response: KubernetesResponse)
        throws(SessionStoreError) -> (sessions: [DebugSession], problems: [String])
    {
        try Self.check(response, expected: [200])
        guard let items = JSONValue.parse(response.body)?.object?["items"]?.array else {
            throw SessionStoreError(.invalidResponse, "the ConfigMap list has no items")
        }
        var sessions: [DebugSession] = []
        var problems: [String] = []
        for item in items {
            do throws(SessionStoreError) {
                sessions.append(try Self.session(fromConfigMap: item.object ?? [:]))
            } catch {
                problems.append(error.reason)
            }
        }
        return (sessions, problems)
    }

    /// The saved session from a create or update answer (200/201 with the ConfigMap).
    static func savedSession(from response: KubernetesResponse) throws(SessionStoreError) -> DebugSession {
        try Self.check(response, expected: [200, 201])
        guard let object = JSONValue.parse(response.body)?.object else {
            throw SessionStoreError(.invalidResponse, "the answer is not a ConfigMap")
        }
        return try Self.session(fromConfigMap: object)
    }

    /// Maps a status other than `expected` to an error: 409 conflict, 404 not found, 5xx unavailable.
    static func check(_ response: KubernetesResponse, expected: Set<Int>) throws(SessionStoreError) {
        if expected.contains(response.status) { return }
        let message = KubernetesStatus.parse(response.body)?.failureText ?? "HTTP \(response.status)"
        switch response.status {
        case 409: throw SessionStoreError(.conflict, message)
        case 404: throw SessionStoreError(.notFound, message)
        case 500...: throw SessionStoreError(.unavailable, message)
        default: throw SessionStoreError(.invalidResponse, message)
        }
    }

    // MARK: - SessionStore

    func loadAll(completion: @escaping @Sendable (Result<[DebugSession], SessionStoreError>) -> Void) {
        self.transport.send(self.listRequest()) { result in
            completion(result.flatMap { response in
                Result { () throws(SessionStoreError) in try Self.sessions(fromList: response).sessions }
            })
        }
    }

    func save(_ session: DebugSession,
              completion: @escaping @Sendable (Result<DebugSession, SessionStoreError>) -> Void) {
        let request = session.storeVersion == nil ? self.createRequest(for: session) : self.updateRequest(for: session)
        self.transport.send(request) { result in
            completion(result.flatMap { response in
                Result { () throws(SessionStoreError) in try Self.savedSession(from: response) }
            })
        }
    }

    func delete(id: String, version: String?,
                completion: @escaping @Sendable (Result<Void, SessionStoreError>) -> Void) {
        self.transport.send(self.deleteRequest(id: id, version: version)) { result in
            completion(result.flatMap { response in
                Result { () throws(SessionStoreError) in try Self.check(response, expected: [200, 202]) }
            })
        }
    }
}

/// A ConfigMap as Porthole writes it.
struct ConfigMapObject: Sendable, Equatable, Encodable {
    struct Metadata: Sendable, Equatable, Encodable {
        var name: String
        var namespace: String
        var labels: [String: String]
        var resourceVersion: String?
    }

    var apiVersion = "v1"
    var kind = "ConfigMap"
    var metadata: Metadata
    var data: [String: String]
}

/// `DeleteOptions` with a resourceVersion precondition.
private struct DeleteOptions: Encodable {
    struct Preconditions: Encodable { var resourceVersion: String }
    var apiVersion = "v1"
    var kind = "DeleteOptions"
    var preconditions: Preconditions
}
