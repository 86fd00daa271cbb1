/// The one decision point: every gateway request, UI view and debug session asks here.
extension Policy {
    /// Decides `request`: an admin group allows everything; otherwise the first binding (in file order) that names
    /// the subject, covers the cluster and the scope, and whose role holds the operation allows; else deny, saying
    /// what is missing and which bindings came close.
    func decide(_ request: PolicyRequest) -> PolicyDecision {
        let subject = request.subject
        if let group = self.admins.first(where: subject.groups.contains) {
            return .allow("group \(group) is an admin group", rule: .admin(group: group))
        }
        var hints: [String] = []
        for (index, binding) in self.bindings.enumerated()
        where binding.applies(to: subject) && binding.covers(cluster: request.cluster) {
            let operations = self.roles[binding.role] ?? []
            let label = self.label(ofBinding: index)
            switch self.reach(of: binding, scope: request.scope) {
            case .yes where operations.contains(request.operation):
                return .allow(
                    "\(label) (role \(binding.role)) grants \(request.operation) on \(request.scope.text) in cluster "
                        + "\(request.cluster) to \(Self.matchText(binding, subject))",
                    rule: .binding(index: index, binding))
            case .yes:
                hints.append("\(label) grants only \(PolicyOperation.list(operations)) there")
            case .unknownLabels where operations.contains(request.operation):
                let selector = binding.namespaceSelector!.text
                hints.append("\(label) selects namespaces by labels (\(selector)), which are unknown")
            case .no where request.scope == .allNamespaces && operations.contains(request.operation):
                hints.append("\(label) grants it only in some namespaces; name one")
            case .no, .unknownLabels:
                break
            }
        }
        let reason = "no binding grants \(request.operation) on \(request.scope.text) in cluster \(request.cluster) to "
            + subject.groupsText
        return .deny(hints.isEmpty ? reason : reason + " (" + hints.joined(separator: "; ") + ")")
    }

    /// Whether `subject` is in an admin group.
    func isAdmin(_ subject: PolicySubject) -> Bool {
        self.admins.contains(where: subject.groups.contains)
    }

    /// Whether `approver` may approve a debug session allowed by `binding`: an admin, or in its approver groups.
    /// Self-approval is the session's to refuse: this only answers for the groups.
    func mayApprove(_ approver: PolicySubject, for binding: PolicyBinding?) -> Bool {
        if self.isAdmin(approver) { return true }
        let groups = binding?.debug?.approval.approverGroups ?? []
        return groups.contains(where: approver.groups.contains)
    }

    /// Whether `binding` reaches `scope`.
    func reach(of binding: PolicyBinding, scope: PolicyScope) -> PolicyBinding.NamespaceMatch {
        switch scope {
        case .namespace(let name, let labels): binding.covers(namespace: name, labels: labels)
        case .allNamespaces: binding.coversAllNamespaces ? .yes : .no
        case .cluster: .yes
        }
    }

    /// `group dev`, or `user alice` when the binding names the subject only by user.
    private static func matchText(_ binding: PolicyBinding, _ subject: PolicySubject) -> String {
        if let group = binding.groups.first(where: subject.groups.contains) { return "group \(group)" }
        return "user \(binding.users.contains(subject.username) ? subject.username : subject.email ?? subject.username)"
    }
}
