/// Grants one role to groups (and optionally users) on clusters and namespaces, with the limits for debug sessions
/// started through it.
struct PolicyBinding: Sendable, Equatable, Codable {
    /// A label for messages and audit lines (`payments-oncall`); defaults to `bindings[N]`.
    var name: String?
    /// Identity-provider groups the binding applies to.
    var groups: [String]
    /// Usernames or emails the binding applies to, besides its groups.
    var users: [String]
    /// The role (a key of `roles`) whose operations are granted.
    var role: String
    /// Agent names, as globs.
    var clusters: [NameGlob]
    /// Namespace names, as globs; empty when only `namespaceSelector` chooses.
    var namespaces: [NameGlob]
    /// Namespace labels; when given with `namespaces`, a namespace must match both.
    var namespaceSelector: NamespaceSelector?
    /// Limits for debug sessions; nil uses `DebugLimits()` (and allows no image). Only for roles with `debug`.
    var debug: DebugLimits?

    /// A binding; `groups` or `users` must be non-empty, `namespaces` or `namespaceSelector` given.
    init(
        name: String? = nil, groups: [String], users: [String] = [], role: String, clusters: [NameGlob],
        namespaces: [NameGlob] = [], namespaceSelector: NamespaceSelector? = nil, debug: DebugLimits? = nil
    ) {
        self.name = name
        self.groups = groups
        self.users = users
        self.role = role
        self.clusters = clusters
        self.namespaces = namespaces
        self.namespaceSelector = namespaceSelector
        self.debug = debug
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, groups, users, role, clusters, namespaces, namespaceSelector, debug
    }

    /// Decodes one entry of `bindings`; `role` and `clusters` are required, unknown fields are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decodeIfPresent(String.self, forKey: .name)
        self.groups = try container.decodeIfPresent([String].self, forKey: .groups) ?? []
        self.users = try container.decodeIfPresent([String].self, forKey: .users) ?? []
        self.role = try container.decode(String.self, forKey: .role)
        self.clusters = try container.decode([NameGlob].self, forKey: .clusters)
        self.namespaces = try container.decodeIfPresent([NameGlob].self, forKey: .namespaces) ?? []
        self.namespaceSelector = try container.decodeIfPresent(NamespaceSelector.self, forKey: .namespaceSelector)
        self.debug = try container.decodeIfPresent(DebugLimits.self, forKey: .debug)
    }

    /// Whether the binding names `subject` by one of its groups, its username or its email.
    func applies(to subject: PolicySubject) -> Bool {
        self.groups.contains(where: subject.groups.contains)
            || self.users.contains(subject.username)
            || (subject.email.map(self.users.contains) ?? false)
    }

    /// Whether `cluster` matches one of `clusters`.
    func covers(cluster: String) -> Bool {
        self.clusters.contains { $0.matches(cluster) }
    }

    /// Whether the binding reaches every namespace: a `*` pattern and no selector.
    var coversAllNamespaces: Bool {
        self.namespaceSelector == nil && self.namespaces.contains(where: \.matchesEverything)
    }

    /// Whether the binding reaches `namespace`; `.unknownLabels` when only its labels (not given) could tell.
    func covers(namespace: String, labels: [String: String]?) -> NamespaceMatch {
        if !self.namespaces.isEmpty, !self.namespaces.contains(where: { $0.matches(namespace) }) { return .no }
        guard let selector = self.namespaceSelector else { return .yes }
        guard let labels else { return .unknownLabels }
        return selector.matches(labels) ? .yes : .no
    }

    /// The answer of `covers(namespace:labels:)`.
    enum NamespaceMatch: Sendable, Equatable {
        case yes
        case no
        case unknownLabels
    }

    /// Checks every field against `roles`; `field` (e.g. `bindings[2]`) prefixes errors.
    func validate(field: String, roles: [String: [PolicyOperation]]) throws(PolicyFile.Invalid) {
        if let name = self.name, name.isEmpty || name.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw PolicyFile.Invalid(field: "\(field).name", reason: "\"\(name)\" must be non-empty without spaces")
        }
        guard !self.groups.isEmpty || !self.users.isEmpty else {
            throw PolicyFile.Invalid(field: "\(field).groups", reason: "name at least one group (or user in users)")
        }
        try PolicyFile.checkGroupNames(self.groups, field: "\(field).groups")
        for (index, user) in self.users.enumerated() where user.isEmpty || user.contains(where: \.isWhitespace) {
            throw PolicyFile.Invalid(
                field: "\(field).users[\(index)]", reason: "\"\(user)\" must be non-empty without spaces")
        }
        guard let operations = roles[self.role] else {
            throw PolicyFile.Invalid(
                field: "\(field).role",
                reason: "\"\(self.role)\" is not a role (roles: \(roles.keys.sorted().joined(separator: ", ")))")
        }
        guard !self.clusters.isEmpty else {
            throw PolicyFile.Invalid(
                field: "\(field).clusters", reason: "name at least one cluster glob (\"*\" for all)")
        }
        for (index, glob) in self.clusters.enumerated() {
            if let problem = NameGlob.problem(with: glob.pattern) {
                throw PolicyFile.Invalid(field: "\(field).clusters[\(index)]", reason: problem)
            }
        }
        guard !self.namespaces.isEmpty || self.namespaceSelector != nil else {
            throw PolicyFile.Invalid(
                field: "\(field).namespaces", reason: "give namespace globs (\"*\" for all) and/or a namespaceSelector")
        }
        for (index, glob) in self.namespaces.enumerated() {
            if let problem = NameGlob.problem(with: glob.pattern) {
                throw PolicyFile.Invalid(field: "\(field).namespaces[\(index)]", reason: problem)
            }
        }
        try self.namespaceSelector?.validate(field: "\(field).namespaceSelector")
        if let debug = self.debug {
            guard operations.contains(.debug) else {
                throw PolicyFile.Invalid(
                    field: "\(field).debug",
                    reason: "role \"\(self.role)\" does not grant debug, so these limits never apply")
            }
            try debug.validate(field: "\(field).debug")
        }
    }
}
