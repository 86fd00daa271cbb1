/// What an identity may use, for the UI and `/me`: the same rules as `decide(_:)`, asked the other way round.
extension Policy {
    /// One binding as it applies to a subject: where and what.
    struct Grant: Sendable, Equatable, Codable {
        /// The binding's name or `bindings[N]`.
        var binding: String
        /// Its role.
        var role: String
        /// The role's operations.
        var operations: [PolicyOperation]
        /// Cluster globs.
        var clusters: [String]
        /// Namespace globs.
        var namespaces: [String]
        /// Namespace labels required, if any.
        var namespaceSelector: [String: String]?
    }

    /// Every binding that names `subject`, in file order; admins get one `*` grant of everything.
    func grants(for subject: PolicySubject) -> [Grant] {
        if let group = self.admins.first(where: subject.groups.contains) {
            return [Grant(
                binding: "admins (\(group))", role: "admin", operations: PolicyOperation.allCases, clusters: ["*"],
                namespaces: ["*"], namespaceSelector: nil)]
        }
        return self.bindings.enumerated().filter { $0.element.applies(to: subject) }.map { index, binding in
            Grant(
                binding: self.label(ofBinding: index), role: binding.role,
                operations: (self.roles[binding.role] ?? []).sorted(), clusters: binding.clusters.map(\.pattern),
                namespaces: binding.namespaces.map(\.pattern),
                namespaceSelector: binding.namespaceSelector?.matchLabels)
        }
    }

    /// The clusters among `names` where `subject` may do anything, in the given order.
    func clusters(for subject: PolicySubject, among names: [String]) -> [String] {
        if self.isAdmin(subject) { return names }
        let bindings = self.bindings.filter { $0.applies(to: subject) }
        return names.filter { name in bindings.contains { $0.covers(cluster: name) } }
    }

    /// The operations `subject` may do in `scope` of `cluster`.
    func operations(for subject: PolicySubject, cluster: String, scope: PolicyScope) -> Set<PolicyOperation> {
        if self.isAdmin(subject) { return Set(PolicyOperation.allCases) }
        var operations: Set<PolicyOperation> = []
        for binding in self.bindings
        where binding.applies(to: subject) && binding.covers(cluster: cluster)
            && self.reach(of: binding, scope: scope) == .yes
        {
            operations.formUnion(self.roles[binding.role] ?? [])
        }
        return operations
    }

    /// The namespaces among `namespaces` (name and labels, when known) where `subject` may do `operation` in
    /// `cluster` (any operation when nil), in the given order.
    func namespaces(
        for subject: PolicySubject, cluster: String, among namespaces: [(name: String, labels: [String: String]?)],
        operation: PolicyOperation? = nil
    ) -> [String] {
        namespaces.filter { namespace in
            let granted = self.operations(
                for: subject, cluster: cluster, scope: .namespace(namespace.name, labels: namespace.labels))
            return operation.map(granted.contains) ?? !granted.isEmpty
        }.map(\.name)
    }
}
