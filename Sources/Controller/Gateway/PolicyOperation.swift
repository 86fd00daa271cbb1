/// What a person may do in a namespace; roles are named sets of these.
enum PolicyOperation: String, Sendable, Hashable, CaseIterable, Codable, Comparable, CustomStringConvertible {
    /// See clusters, namespaces, pods and events; read API discovery.
    case view
    /// Read a pod's logs (`pods/log`).
    case logs
    /// Run a command in a container (`pods/exec`).
    case exec
    /// Attach to a running container (`pods/attach`).
    case attach
    /// Forward ports to a pod (`pods/portforward`).
    case portforward
    /// Add an ephemeral debug container to a pod (`pods/ephemeralcontainers`).
    case debug
    /// Get, list and watch other Kubernetes resources.
    case read
    /// Every other verb on any resource.
    case write

    var description: String { self.rawValue }

    static func < (lhs: PolicyOperation, rhs: PolicyOperation) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }

    /// `view, logs, exec` in declaration order; `nothing` when empty.
    static func list(_ operations: some Sequence<PolicyOperation>) -> String {
        let sorted = Set(operations).sorted()
        return sorted.isEmpty ? "nothing" : sorted.map(\.rawValue).joined(separator: ", ")
    }
}

extension PolicyOperation {
    /// Decodes an operation name; the error lists the known ones.
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let operation = PolicyOperation(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(name)\" is not an operation (\(Self.list(Self.allCases)))")
        }
        self = operation
    }
}
