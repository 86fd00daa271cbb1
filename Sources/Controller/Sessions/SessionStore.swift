import Foundation

/// Where sessions are kept so that they survive a restart and every replica sees the same ones.
///
/// Calls complete on any thread. `save` is a compare-and-swap on `DebugSession.storeVersion`: a session whose
/// version is not the stored one (another replica changed it first) fails with `.conflict`; reload it, apply the
/// transition again, and save again. A new session has no version.
protocol SessionStore: Sendable {
    /// Every stored session.
    func loadAll(completion: @escaping @Sendable (Result<[DebugSession], SessionStoreError>) -> Void)
    /// Stores `session`; succeeds with the session carrying its new `storeVersion`.
    func save(_ session: DebugSession,
              completion: @escaping @Sendable (Result<DebugSession, SessionStoreError>) -> Void)
    /// Forgets a session (retention); `version` when given must be the stored one.
    func delete(id: String, version: String?, completion: @escaping @Sendable (Result<Void, SessionStoreError>) -> Void)
}

/// Why a store operation failed.
struct SessionStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    enum Kind: String, Sendable, Equatable {
        /// Someone else changed the session first (HTTP 409, or a journal version mismatch).
        case conflict
        /// No such session.
        case notFound
        /// The store cannot be reached (the cluster's tunnel is down, the API server answers 5xx).
        case unavailable
        /// The store answered something that is not what was asked for.
        case invalidResponse
        /// A file operation failed.
        case io
    }

    var kind: Kind
    var reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    var description: String { "\(self.kind.rawValue): \(self.reason)" }
}

/// A request to the Kubernetes API, built without I/O; the controller sends it through the agent's tunnel
/// (`TunnelClient.open(agent:serviceType: "kubernetes", …)`).
struct KubernetesRequest: Sendable, Equatable {
    var method: String
    /// Path and query: `/api/v1/namespaces/porthole/configmaps?labelSelector=…`.
    var path: String
    /// `content-type` and `accept`.
    var headers: [String: String]
    var body: [UInt8]?
}

/// The answer to a `KubernetesRequest`.
struct KubernetesResponse: Sendable, Equatable {
    var status: Int
    var body: [UInt8]
}

/// Sends Kubernetes requests: the controller's is a `TunnelClient` to the agent's `kubernetes` service; tests use
/// a fake.
protocol KubernetesTransport: Sendable {
    /// Sends `request`; fails with `.unavailable` when the cluster cannot be reached.
    func send(_ request: KubernetesRequest,
              completion: @escaping @Sendable (Result<KubernetesResponse, SessionStoreError>) -> Void)
}
