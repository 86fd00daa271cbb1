/// Namespaces chosen by their labels, as a Kubernetes label selector's `matchLabels`: every listed label must be
/// present with exactly that value.
struct NamespaceSelector: Sendable, Equatable, Codable {
    /// Labels a namespace must all carry.
    var matchLabels: [String: String]

    /// A selector requiring `matchLabels`.
    init(matchLabels: [String: String]) {
        self.matchLabels = matchLabels
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case matchLabels }

    /// Decodes `{"matchLabels": {...}}`; unknown fields (`matchExpressions` too) are an error.
    init(from decoder: any Decoder) throws {
        try PolicyFile.rejectUnknownKeys(in: decoder, known: CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.matchLabels = try container.decode([String: String].self, forKey: .matchLabels)
    }

    /// Whether a namespace with `labels` is selected.
    func matches(_ labels: [String: String]) -> Bool {
        self.matchLabels.allSatisfy { labels[$0.key] == $0.value }
    }

    /// `team=payments,tier=prod`, sorted by key.
    var text: String {
        self.matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Checks label keys and values as Kubernetes does; `field` names the selector in errors.
    func validate(field: String) throws(PolicyFile.Invalid) {
        guard !self.matchLabels.isEmpty else {
            throw PolicyFile.Invalid(
                field: "\(field).matchLabels", reason: "must not be empty (to select every namespace use \"*\")")
        }
        for (key, value) in self.matchLabels.sorted(by: { $0.key < $1.key }) {
            guard Self.isLabelKey(key) else {
                throw PolicyFile.Invalid(
                    field: "\(field).matchLabels.\(key)",
                    reason: "\"\(key)\" is not a label key (optional DNS prefix and '/', then up to 63 letters, "
                        + "digits, '-', '_', '.', starting and ending with a letter or digit)")
            }
            guard value.isEmpty || Self.isLabelName(value) else {
                throw PolicyFile.Invalid(
                    field: "\(field).matchLabels.\(key)",
                    reason: "\"\(value)\" is not a label value (up to 63 letters, digits, '-', '_', '.', starting "
                        + "and ending with a letter or digit)")
            }
        }
    }

    private static func isLabelKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 {
            let prefix = parts[0]
            let labels = prefix.split(separator: ".", omittingEmptySubsequences: false)
            guard prefix.count <= 253,
                labels.allSatisfy({ label in
                    !label.isEmpty && label.count <= 63 && label.first!.isLetterOrDigit && label.last!.isLetterOrDigit
                        && label.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
                })
            else { return false }
        }
        return Self.isLabelName(String(parts[parts.count - 1]))
    }

    private static func isLabelName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 63 && name.first!.isLetterOrDigit && name.last!.isLetterOrDigit
            && name.allSatisfy { $0.isLetterOrDigit || "-_.".contains($0) }
    }
}

extension Character {
    /// An ASCII letter or digit, as Kubernetes names require at their ends.
    fileprivate var isLetterOrDigit: Bool { self.isASCII && (self.isLetter || self.isNumber) }
}
