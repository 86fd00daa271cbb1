import Foundation

/// Who may do what where through the gateway: roles (named sets of operations), bindings of groups to roles on
/// clusters and namespaces, admin groups, and an optional external decision endpoint.
///
/// Read from a JSON file (`PolicyFile.load(path:)`), kept current by `PolicyStore`, and asked through
/// `decide(_:)`. Documented in `docs/gateway.md`.
struct Policy: Sendable, Equatable, Codable {
    /// Role name → the operations it grants.
    var roles: [String: [PolicyOperation]]
    /// Bindings, in the order they are checked: the first that grants an operation decides.
    var bindings: [PolicyBinding]
    /// Groups allowed every operation everywhere; they also approve and end anyone's debug sessions.
    var admins: [String]
    /// Asked after the policy allows; its deny, error or silence denies.
    var externalDecision: ExternalDecisionSettings?

    /// A policy; validate it with `validate()` before use.
    init(
        roles: [String: [PolicyOperation]], bindings: [PolicyBinding], admins: [String] = [],
        externalDecision: ExternalDecisionSettings? = nil
    ) {
        self.roles = roles
        self.bindings = bindings
        self.admins = admins
        self.externalDecision = externalDecision
    }

    /// A policy that allows nothing to anyone.
    static let empty = Policy(roles: [:], bindings: [])

    enum CodingKeys: String, CodingKey, CaseIterable { case roles, bindings, admins, externalDecision }

    /// Decodes the file's top-level object; `roles` and `bindings` are required, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.roles = try container.decode([String: [PolicyOperation]].self, forKey: .roles)
        self.bindings = try container.decode([PolicyBinding].self, forKey: .bindings)
        self.admins = try container.decodeIfPresent([String].self, forKey: .admins) ?? []
        self.externalDecision = try container.decodeIfPresent(ExternalDecisionSettings.self, forKey: .externalDecision)
    }

    /// Checks every role and binding; the error names the field, e.g. `bindings[2].namespaces[0]`.
    func validate() throws(PolicyFile.Invalid) {
        for name in self.roles.keys.sorted() {
            let operations = self.roles[name]!
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else {
                throw PolicyFile.Invalid(
                    field: "roles.\(name)", reason: "a role name is letters, digits, '.', '_', '-'")
            }
            guard !operations.isEmpty else {
                throw PolicyFile.Invalid(field: "roles.\(name)", reason: "grants no operation")
            }
            if let duplicate = operations.first(where: { one in operations.filter { $0 == one }.count > 1 }) {
                throw PolicyFile.Invalid(field: "roles.\(name)", reason: "lists \(duplicate) twice")
            }
        }
        try PolicyFile.checkGroupNames(self.admins, field: "admins")
        var names: [String: Int] = [:]
        for (index, binding) in self.bindings.enumerated() {
            try binding.validate(field: "bindings[\(index)]", roles: self.roles)
            if let name = binding.name {
                if let first = names[name] {
                    throw PolicyFile.Invalid(
                        field: "bindings[\(index)].name",
                        reason: "\"\(name)\" is already the name of bindings[\(first)]")
                }
                names[name] = index
            }
        }
        try self.externalDecision?.validate(field: "externalDecision")
    }

    /// The label of binding `index` in messages: its name, or `bindings[N]`.
    func label(ofBinding index: Int) -> String {
        self.bindings[index].name ?? "bindings[\(index)]"
    }
}
